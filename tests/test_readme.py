"""The README's commands stay runnable: every command in its shell blocks (`python -m ...`, the `ar2-*`
scripts) parses with today's flags, and a train or tuning command also builds and checks its whole config, as
the command does before any work. A renamed flag, a removed choice or a preset that no longer exists fails
here, not in a user's terminal."""

import contextlib
import importlib
import io
import os
import re
import shlex

import pytest

from tests.helpers import ROOT

MODULES = {"ar2_tf.train": "ar2_tf.train", "ar2_tf.evaluate": "ar2_tf.evaluate",
           "ar2_tf.benchmark": "ar2_tf.benchmark", "ar2_tf.benchmark_view": "ar2_tf.benchmark_view",
           "ar2_tf.precompute": "ar2_tf.precompute", "tuning": "tuning.__main__", "export": "export.__main__"}


def _scripts() -> dict:
    """The installed command names (pyproject.toml) -> their module."""
    with open(os.path.join(ROOT, "pyproject.toml")) as file:  # no tomllib: Python 3.10 is supported
        section = file.read().split("[project.scripts]")[1].split("\n[")[0]
    return dict(re.findall(r'^(ar2-[a-z-]+) = "([\w.]+):\w+"', section, re.M))


def readme_commands() -> list:
    """(module, argv) of every command line in the README's shell blocks, continuation lines joined."""
    scripts, commands, inside, language, pending = _scripts(), [], False, "", ""
    pattern = re.compile(r"(?:^|[\s/])(?:python3? -m (?P<module>[\w.]+)|(?P<script>ar2-[a-z-]+))(?P<rest>\s.*)?$")
    with open(os.path.join(ROOT, "README.md")) as file:
        for line in file.read().splitlines():
            if line.startswith("```"):
                inside, language = not inside, line[3:].strip()
                continue
            if not inside or language not in ("", "bash", "sh"):
                continue
            line = pending + line
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            for part in re.split(r"&&|;", line.split(" # ")[0]):
                found = pattern.search(part.strip())
                module = found and (MODULES.get(found["module"]) or scripts.get(found["script"]))
                if module:
                    commands.append((module, shlex.split(found["rest"] or "")))
    return commands


COMMANDS = readme_commands()


def test_the_readme_holds_the_commands_of_every_entry_point():
    assert len(COMMANDS) >= 20
    assert {module for module, _ in COMMANDS} >= {"ar2_tf.train", "ar2_tf.evaluate", "ar2_tf.benchmark",
                                                   "tuning.__main__", "export.__main__"}


@pytest.mark.parametrize("module, argv", COMMANDS, ids=[" ".join([m, *a])[:80] for m, a in COMMANDS])
def test_a_readme_command_parses_and_its_config_checks(module, argv):
    command = importlib.import_module(module)
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            if module == "ar2_tf.evaluate" and argv[:1] == ["transfer"]:
                command.build_transfer_parser().parse_args(argv[1:])
                return
            if module == "ar2_tf.benchmark":  # its own flags, then training's, and the config they make
                command.parse(argv)
                return
            args = command.build_parser().parse_args(argv)
    except SystemExit:
        pytest.fail(f"README: {module} {' '.join(argv)}\n{errors.getvalue()}")
    if module == "ar2_tf.train" and not args.config:  # a --config file is the run's own (a search's best.json)
        from ar2_tf.runs.config import check

        check(command.config_from_args(args))
    elif module == "tuning.__main__":
        command.search_from_args(args)


def readme_demo_block() -> list:
    """The lines of the demo's output that the Quick start shows (the block after "this output:")."""
    with open(os.path.join(ROOT, "README.md")) as file:
        text = file.read()
    block = re.search(r"this output:.*?\n```\n(.*?)```", text, re.S)
    return block.group(1).splitlines()


@pytest.mark.scale
def test_the_demo_prints_what_the_quick_start_shows(tmp_path):
    """The README's first command, as a new user runs it (about 1.5 min): its summary, line for line, is the
    Quick start's block ("..." stands for the severities it leaves out), the run folder aside."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "ar2_tf.train", "--out", str(tmp_path / "demo"), "--verbose", "0"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    printed = [line.rstrip() for line in done.stdout.splitlines()]
    shown = readme_demo_block()
    assert shown[0].startswith("ar2 repair for gaussian_noise -> ")
    start = next(i for i, line in enumerate(printed) if line.startswith("ar2 repair for gaussian_noise -> "))
    summary = [line for line in printed[start + 1:] if line]
    assert [line for line in summary if line in shown[1:]] == [line for line in shown[1:] if line != "..."]
    assert len(summary) == len(shown[1:]) - 1 + 3  # its "..." stands for severities 2-4
