"""Shared command-line behaviour: user errors become one message, in the command's flags, and exit status 2."""

import argparse
import functools
import sys

from ar2_tf import quiet
from ar2_tf.errors import UserError, speaking


def command(*build_parsers):
    """Marks a command's `main` with the parser builders that define its flags, so that `run_main` words
    the library's errors in them (`flag_words`)."""
    def mark(main):
        main.build_parsers = build_parsers
        return main
    return mark


def flag_words(*parsers) -> dict:
    """{argument name: its flag} for every option of `parsers` (its `dest` and its long option string): the one
    place where an argument's Python name, as the library's messages write it, becomes a command's flag."""
    words = {}
    for parser in parsers:
        for action in parser._actions:
            if action.option_strings and action.dest != argparse.SUPPRESS:
                words.setdefault(action.dest, max(action.option_strings, key=len))
    return words


def run_main(main, argv=None) -> int:
    """Calls `main(argv)`; a `UserError` prints `error: <message>` to stderr, argument names worded as the
    command's flags (`command`), and returns 2. The library's printed notes (`ar2_tf.errors.note`) speak the
    same flags meanwhile."""
    words = flag_words(*(build() for build in getattr(main, "build_parsers", ())))
    try:
        with speaking(words):
            main(argv)
    except UserError as error:
        print(f"error: {error.worded(words)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; re-run the same command to resume from the last checkpoint.", file=sys.stderr)
        return 130
    return 0


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """`--help` shows a flag's default where it says something: not for a flag whose help already
    names its default, and not for an unset one (None, off, empty), which the command resolves
    later (config layering, presets, the dataset's defaults)."""

    def _get_help_string(self, action):
        text = action.help or ""
        unset = action.default is None or action.default is False or action.default == []
        if "default" in text or unset or action.default == argparse.SUPPRESS:
            return text
        return super()._get_help_string(action)


def start_tensorflow(custom_objects=()):
    """A command calls this once its flags are checked, before importing TensorFlow: a launched
    command imports it quietly (`ar2_tf.quiet`; called from Python, that is left alone), then
    imports the `--custom-objects` files or modules that register the model's custom layers."""
    if quiet.launched():
        quiet.quiet_start()
    if custom_objects:
        from ar2_tf.models.loading import import_custom_objects

        import_custom_objects(custom_objects)


def add_model_loading_flags(group):
    """The flags that say how model files load, the same for every command that loads one."""
    group.add_argument("--unsafe-model-loading", action="store_true", default=None,
                       help="allow model files containing Python lambdas (runs code from the file!)")
    group.add_argument("--custom-objects", action="append", default=[], metavar="FILE.py|MODULE",
                       help="import this Python file or module first, so the custom layers and functions it "
                            "registers (@keras.saving.register_keras_serializable()) load with the model; runs its "
                            "code; repeatable")


def console_script(main):
    """The zero-argument entry point of a command: `run_main(main)` on `sys.argv`, returning the exit status."""
    return functools.partial(run_main, main)


def parse_int_list(text: str, name: str):
    """Parses "1-5" or "1,3,5" into a list of ints; a bad value raises UserError."""
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            return list(range(low, high + 1))
        return [int(part) for part in text.split(",") if part]
    except ValueError:
        raise UserError(f"`{name}` must look like 1-5 or 1,3,5, got {text!r}.") from None
