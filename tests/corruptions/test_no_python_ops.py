"""Ready for a GPU: the native path of every corruption traces to TensorFlow ops only (no py_function or
numpy_function, which would pin tf.data to the Python interpreter and the host)."""

import pytest
import tensorflow as tf

from ar2_tf.corruptions import ALL_CORRUPTIONS, corrupt

PYTHON_OPS = {"PyFunc", "PyFuncStateless", "EagerPyFunc"}


def op_types(concrete) -> set:
    """Every op type in a traced function's graph, the functions it calls (while bodies, conds) included."""
    graph = concrete.graph.as_graph_def()
    types = {node.op for node in graph.node}
    for function in graph.library.function:
        types |= {node.op for node in function.node_def}
    return types


def traced(name, params, backend="native"):
    size = 32 if params == "cifar" else 224
    return tf.function(lambda x: corrupt(x, name, 3, tf.constant([7, 1]), params=params, backend=backend)).get_concrete_function(
        tf.TensorSpec([None, size, size, 3], tf.uint8))


@pytest.mark.parametrize("params", ["cifar", "imagenet"])
@pytest.mark.parametrize("name", ALL_CORRUPTIONS)
def test_native_corruption_graph_has_no_python_ops(name, params):
    types = op_types(traced(name, params))
    assert types and not types & PYTHON_OPS


def test_the_check_sees_python_ops_where_they_are():
    assert op_types(traced("gaussian_noise", "imagenet", backend="reference")) & PYTHON_OPS
