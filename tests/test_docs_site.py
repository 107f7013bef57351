"""The documentation site builds offline and warning-free (`mkdocs build --strict`: no broken link or anchor,
no page missing or outside the nav, no docstring mkdocstrings cannot read), and its command-line reference,
made from the parsers at build time (docs/hooks/cli_reference.py), shows every flag of every command with its
help."""

import argparse
import glob
import html
import importlib
import os
import re
import subprocess
import sys

import pytest

from tests.helpers import ROOT, console_scripts

# `python -m mkdocs` with the network refused: a plugin or an API inventory that downloads anything (a URL in
# mkdocstrings' `inventories`, a theme plugin that fetches fonts) fails the build instead of hanging offline.
OFFLINE_MKDOCS = """
import runpy, socket, sys

def refuse(*args, **kwargs):
    raise OSError("the documentation build tried to reach the network")

socket.getaddrinfo = socket.socket.connect = socket.socket.connect_ex = refuse
sys.argv = ["mkdocs", *sys.argv[1:]]
runpy.run_module("mkdocs", run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """(the finished build, the site folder) of `mkdocs build --strict`, offline."""
    site_dir = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    done = subprocess.run([sys.executable, "-c", OFFLINE_MKDOCS, "build", "--strict", "--site-dir", str(site_dir)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return done, site_dir


def test_the_site_builds_offline_without_a_warning(site):
    done, site_dir = site
    assert done.returncode == 0 and "WARNING" not in done.stderr, done.stderr[-5000:]
    assert os.path.exists(os.path.join(site_dir, "reference", "cli", "index.html"))
    assert os.path.exists(os.path.join(site_dir, "reference", "api", "index.html"))


def _sections(page: str) -> dict:
    """{heading text: its HTML} of a page's h2 sections; the CLI reference heads each with a parser's prog."""
    sections = {}
    for part in page.split("<h2 ")[1:]:
        heading = re.search(r">(.*?)</h2>", part, re.S)[1]
        sections[html.unescape(re.sub(r"<[^>]+>", "", heading)).strip(" ¶\n")] = part
    return sections


def _text(fragment: str) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", "", fragment)).split())


def _parsers():
    """Every parser of every installed command: the ones each `main` words its errors in (`ar2_tf.cli.command`):
    a command's own, its subcommand's (evaluate's `transfer`) and the one it passes flags on to (benchmark's
    training flags)."""
    for module in sorted(set(console_scripts().values())):
        for build in importlib.import_module(module).main.build_parsers:
            yield build()


def test_the_cli_reference_shows_every_flag_of_every_command(site):
    done, site_dir = site
    assert done.returncode == 0, done.stderr[-5000:]
    with open(os.path.join(site_dir, "reference", "cli", "index.html")) as file:
        sections = _sections(file.read())
    parsers = list(_parsers())
    assert {parser.prog for parser in parsers} >= {"python -m ar2_tf.train", "python -m ar2_tf.evaluate transfer",
                                                  "python -m tuning", "python -m export"}
    for parser in parsers:
        assert parser.prog in sections, f"docs/reference/cli.md has no section for {parser.prog}"
        section = sections[parser.prog]
        shown = {code.split()[0] for code in map(html.unescape, re.findall(r"<code>(.*?)</code>", section)) if code}
        text = _text(section)
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:
                continue
            missing = [option for option in action.option_strings if option not in shown]
            assert not missing, f"{parser.prog}: {missing} not in docs/reference/cli.md"
            if action.help:
                help_text = argparse.HelpFormatter(parser.prog)._expand_help(action).replace("`", "")
                assert " ".join(help_text.split()) in text, f"{parser.prog} {action.option_strings}: help not shown"


# Flags of other programs that the pages show: pytest, mkdocs, TensorBoard, Docker, saved_model_cli and
# tensorflow_model_server.
OTHER_PROGRAMS_FLAGS = {"--all", "--bind_all", "--durations", "--grpc_socket_path", "--host", "--logdir",
                        "--model_config_file", "--model_config_file_poll_wait_seconds", "--port", "--rest_api_port",
                        "--rm", "--strict"}


def _script_flags() -> set:
    """The flags of the measurement scripts (`scripts/*.py`), as their parsers declare them."""
    flags = set()
    for path in glob.glob(os.path.join(ROOT, "scripts", "*.py")):
        with open(path) as file:
            flags.update(re.findall(r"add_argument\(\"(--[a-z][a-z0-9-]*)\"", file.read()))
    return flags


def test_every_flag_the_pages_name_exists():
    """A flag named anywhere in the README or the docs (a table, a sentence, a command) is one of a command's,
    a script's or another program's: a renamed or removed flag cannot linger in prose the parser check misses."""
    known = OTHER_PROGRAMS_FLAGS | _script_flags()
    for parser in _parsers():
        for action in parser._actions:
            known.update(action.option_strings)
    pages = ["README.md", "SECURITY.md", *glob.glob("docs/**/*.md", root_dir=ROOT, recursive=True)]
    unknown = []
    for page in pages:
        with open(os.path.join(ROOT, page)) as file:
            for number, line in enumerate(file, 1):
                unknown += [f"{page}:{number} {flag}" for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", line)
                            if flag not in known]
    assert not unknown, "flags no command, script or named program has:\n" + "\n".join(unknown)
