"""mkdocs hook: the command-line reference, made from the commands' argparse parsers at build time.

A page line `<!-- cli: MODULE -->` (or `<!-- cli: MODULE BUILDER -->`) becomes the Markdown reference of the
parser that `MODULE.BUILDER()` returns (default builder: `build_parser`): a section headed by its prog, the
installed command (pyproject.toml [project.scripts]), its usage, description and epilog, and every argument
group with each flag's metavar, help (`%(default)s` and the like filled in as argparse does), default and
whether it is required. The page is the parser, so it cannot drift from a flag; a marker that names no parser
fails the build.
"""

import argparse
import html
import importlib
import os
import re
import sys

from mkdocs.exceptions import PluginError

MARKER = re.compile(r"^<!-- cli: (?P<module>[\w.]+)(?: (?P<builder>\w+))? -->$", re.M)
USAGE_WIDTH = 100  # usage lines wrap here, whatever the width of the terminal that builds the site
_CODE_SPAN = re.compile(r"(`[^`]*`)")
_MARKDOWN_SPECIAL = re.compile(r"([\\*_\[\]])")


def on_config(config):
    """The project root first on `sys.path`: the commands documented are this checkout's, not an installed copy."""
    root = os.path.dirname(os.path.abspath(config.config_file_path))
    if sys.path[:1] != [root]:
        sys.path.insert(0, root)
    return config


def on_page_markdown(markdown, page, config, files):
    return MARKER.sub(lambda found: render(parser_of(found["module"], found["builder"] or "build_parser"),
                                           _scripts(config)), markdown)


def parser_of(module: str, builder: str) -> argparse.ArgumentParser:
    try:
        return getattr(importlib.import_module(module), builder)()
    except (ImportError, AttributeError) as error:
        raise PluginError(f"<!-- cli: {module} {builder} -->: no parser there ({error})") from error


def _scripts(config) -> dict:
    """{module: installed command name} from pyproject.toml [project.scripts] (no tomllib: Python 3.10)."""
    with open(os.path.join(os.path.dirname(os.path.abspath(config.config_file_path)), "pyproject.toml")) as file:
        section = file.read().split("[project.scripts]")[1].split("\n[")[0]
    return {module: name for name, module in re.findall(r'^(\S+) = "([\w.]+):\w+"', section, re.M)}


def render(parser: argparse.ArgumentParser, scripts: dict) -> str:
    """The Markdown reference of one parser (module docstring)."""
    command = parser.prog.removeprefix("python -m ")
    anchor = command.replace(" ", "-")
    module, _, subcommand = command.partition(" ")
    module = module if module in scripts else module + ".__main__"
    lines = [f"## `{parser.prog}` {{ #{anchor} }}", ""]
    if module in scripts:
        lines += [f"Installed as `{' '.join([scripts[module], subcommand]).strip()}`.", ""]
    # argparse has no public view of its actions and groups: these are the attributes its own format_help reads.
    usage = argparse.HelpFormatter(parser.prog, width=USAGE_WIDTH)
    usage.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    lines += ["```text", usage.format_help().strip(), "```", ""]
    raw = issubclass(parser.formatter_class, argparse.RawDescriptionHelpFormatter)
    epilog = parser.epilog or ""
    if parser.description and epilog.strip().startswith(parser.description):  # a module docstring as the epilog
        epilog = epilog.strip()[len(parser.description):]
    for text in (parser.description or "", epilog):
        if text.strip():
            lines += [*_block(text, raw), ""]
    for group in parser._action_groups:
        actions = [action for action in group._group_actions if action.help != argparse.SUPPRESS]
        if not actions:
            continue
        lines += [f"### {_escape(group.title)} {{ #{anchor}-{group.title.replace(' ', '-')} }}", ""]
        if group.description:
            lines += [_escape(group.description), ""]
        lines += [_flag(parser.prog, action) for action in actions] + [""]
    return "\n".join(lines)


def _flag(prog: str, action: argparse.Action) -> str:
    """One list item, e.g. "`-k K`, `--k K`: classes per view" or "`--out OUT` (required): ... (default: `x`)"."""
    formatter = argparse.HelpFormatter(prog)
    if action.option_strings:
        metavar = formatter._format_args(action, action.dest.upper())
        names = ", ".join(f"`{' '.join(filter(None, (option, metavar)))}`" for option in action.option_strings)
    else:
        names = f"`{formatter._format_args(action, action.dest)}`"
    if action.required and action.option_strings:
        names += " (required)"
    words = [_escape(formatter._expand_help(action))] if action.help else []
    unset = action.default is None or action.default is False or action.default == [] or \
        action.default == argparse.SUPPRESS
    if not unset and action.option_strings and "default" not in (action.help or ""):  # as ar2_tf.cli.HelpFormatter
        words.append(f"(default: `{action.default}`)")
    return f"- {names}: {' '.join(words)}"


def _block(text: str, raw: bool) -> list:
    """A description or epilog: verbatim in a text block where the parser prints it as written, else prose."""
    if raw and "\n" in text.strip():
        return ["```text", text.strip("\n").rstrip(), "```"]
    return [_escape(" ".join(text.split()))]


def _escape(text: str) -> str:
    """Help text as Markdown prose: code spans kept, everything else literal (no emphasis, links or HTML)."""
    parts = _CODE_SPAN.split(text)
    return "".join(part if index % 2 else html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", part), quote=False)
                   for index, part in enumerate(parts))
