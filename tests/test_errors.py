"""ar2_tf.errors: one line of an exception for a user's message, TensorFlow's graph errors included."""

import numpy as np
import pytest
import tensorflow as tf

from ar2_tf.errors import first_line, note, speaking


def test_first_line_of_a_plain_error_and_of_tensorflows_graph_execution_error():
    assert first_line(ValueError("bad size\nmore detail")) == "bad size"
    assert first_line(KeyError()) == "KeyError()"

    @tf.function(input_signature=[tf.TensorSpec([None, None])] * 2)  # shapes known only when it runs
    def multiply(a, b):
        return tf.matmul(a, b)

    with pytest.raises(tf.errors.InvalidArgumentError) as error:
        multiply(np.zeros((2, 3), np.float32), np.zeros((4, 5), np.float32))
    assert str(error.value).startswith("Graph execution error:")  # then the Python stack, then what went wrong
    assert first_line(error.value).startswith("Matrix size-incompatible: In[0]: [2,3], In[1]: [4,5]")


def test_first_line_drops_tf_datas_function_node_prefix():
    error = tf.errors.InvalidArgumentError(None, None, "{{function_node __wrapped__IteratorGetNext_device_/job:"
                                                       "localhost}} Unknown image file format.\nmore")
    assert first_line(error) == "Unknown image file format."


def test_a_note_names_arguments_in_python_words_unless_a_command_speaks(capsys):
    note("reusing its report (`force` runs it again); `k` and `colour` as written.")
    with speaking({"force": "--force", "k": "-k"}):
        note("reusing its report (`force` runs it again); `k` and `colour` as written.")
    note("`force` again")
    assert capsys.readouterr().out.splitlines() == [
        "reusing its report (`force` runs it again); `k` and `colour` as written.",
        "reusing its report (--force runs it again); -k and `colour` as written.",
        "`force` again"]
