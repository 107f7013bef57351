"""The documented commands stay runnable: every command in the shell blocks of the README and of the docs
site's pages (docs/**/*.md: `python -m ...`, the `ar2-*` scripts) parses with today's flags, and a train or
tuning command also builds and checks its whole config, as the command does before any work. A renamed flag, a
removed choice or a preset that no longer exists fails here, not in a user's terminal."""

import contextlib
import glob
import importlib
import io
import os
import re
import shlex

import pytest

from tests.helpers import ROOT, console_scripts

PACKAGES = {"tuning": "tuning.__main__", "export": "export.__main__"}  # `python -m` of a package: its __main__


def documented_files() -> list:
    """README.md and every page of the docs site, as paths relative to the repository root."""
    pages = glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    return ["README.md", *sorted(os.path.relpath(page, ROOT) for page in pages)]


def documented_commands() -> list:
    """(file:line, module, argv) of every command line in the shell blocks of README.md and docs/**/*.md,
    continuation lines joined (file:line is where the command starts)."""
    scripts, commands = console_scripts(), []
    pattern = re.compile(r"(?:^|[\s/])(?:python3? -m (?P<module>[\w.]+)|(?P<script>ar2-[a-z-]+))(?P<rest>\s.*)?$")
    for path in documented_files():
        inside, language, pending, start = False, "", "", 0
        with open(os.path.join(ROOT, path)) as file:
            lines = file.read().splitlines()
        for number, line in enumerate(lines, 1):
            line = line.strip()  # a block may sit indented in a list or an admonition
            if line.startswith("```"):
                inside, language = not inside, line[3:].strip()
                continue
            if not inside or language not in ("", "bash", "sh"):
                continue
            start = start if pending else number
            line = pending + line
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            pending = ""
            for part in re.split(r"&&|;", line.split(" # ")[0]):
                found = pattern.search(part.strip())
                name = found and (found["module"] or "")
                module = found and (PACKAGES.get(name) or (name if name.startswith("ar2_tf.") else None)
                                    or scripts.get(found["script"]))
                if module:
                    commands.append((f"{path}:{start}", module, shlex.split(found["rest"] or "")))
    return commands


COMMANDS = documented_commands()


def test_the_docs_hold_the_commands_of_every_entry_point():
    assert len(COMMANDS) >= 20
    assert any(path.startswith("docs/") for path, _, _ in COMMANDS)  # the docs pages' commands are read too
    assert {module for _, module, _ in COMMANDS} >= {"ar2_tf.train", "ar2_tf.evaluate", "ar2_tf.benchmark",
                                                   "tuning.__main__", "export.__main__"}


def test_every_command_sits_in_a_fenced_block():
    """An indented code block is not a shell block the check above reads: a command there would go unchecked."""
    unfenced = []
    for path in documented_files():
        inside = False
        with open(os.path.join(ROOT, path)) as file:
            for number, line in enumerate(file.read().splitlines(), 1):
                if line.strip().startswith("```"):
                    inside = not inside
                elif not inside and re.match(r" {4,}(python3? -m |ar2-[a-z-]+ )", line):
                    unfenced.append(f"{path}:{number}")
    assert not unfenced, f"commands in indented, unfenced blocks (fence them with ```bash): {unfenced}"


def _check_flags(module, argv):
    """What the command does with its flags before any work (TensorFlow-free): parse them, and build and
    check the config of a train (without a --config file: a run's own, such as a search's best.json),
    benchmark or tuning command."""
    command = importlib.import_module(module)
    if module == "ar2_tf.evaluate" and argv[:1] == ["transfer"]:
        command.build_transfer_parser().parse_args(argv[1:])
    elif module == "ar2_tf.benchmark":  # its own flags, then training's, and the config they make
        command.parse(argv)
    else:
        args = command.build_parser().parse_args(argv)
        if module == "ar2_tf.train" and not args.config:
            from ar2_tf.runs.config import check

            check(command.config_from_args(args))
        elif module == "tuning.__main__":
            from ar2_tf.runs.config import check

            check(command.search_from_args(args).train)


@pytest.mark.parametrize("where, module, argv", COMMANDS,
                         ids=[f"{w} {' '.join([m, *a])}"[:110] for w, m, a in COMMANDS])
def test_a_documented_command_parses_and_its_config_checks(where, module, argv):
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            _check_flags(module, argv)
    except SystemExit:  # argparse's refusal, written to stderr
        pytest.fail(f"{where}: {module} {' '.join(argv)}\n{errors.getvalue()}")


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


def _readme_repair_calls() -> list:
    """The keyword names of every `ar2_tf.repair(...)` call in the README's Python blocks."""
    import ast

    with open(os.path.join(ROOT, "README.md")) as file:
        blocks = re.findall(r"```python\n(.*?)```", file.read(), re.S)
    return [[keyword.arg for keyword in node.keywords] for block in blocks for node in ast.walk(ast.parse(block))
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "ar2_tf.repair"]


def test_the_readme_python_quick_start_calls_repair_with_its_options():
    """The front page's Python call names only what `ar2_tf.repair` accepts: its parameters or config fields
    (the check `repair` runs first, before any data is read)."""
    import inspect

    from ar2_tf import api

    calls = _readme_repair_calls()
    assert calls, "the README shows no ar2_tf.repair call"
    parameters = set(inspect.signature(api.repair).parameters) - {"options"}
    for keywords in calls:
        api._split_options({name: None for name in keywords if name not in parameters})
