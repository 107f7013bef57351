"""The library names Python arguments (`batch_size`), never a command's flags: each command words its errors in
its own flags (`ar2_tf.cli.run_main`). Outside the command modules a flag appears only inside a whole command
(`python -m ar2_tf.evaluate --tent MODEL`: a pointer to another command) or where `ALLOWED` says why."""

import os
import re

from tests.helpers import ROOT

PACKAGES = ("ar2_tf", "export", "tuning")
COMMAND_MODULES = {"ar2_tf/train.py", "ar2_tf/evaluate.py", "ar2_tf/benchmark.py", "ar2_tf/benchmark_view.py",
                   "ar2_tf/precompute.py", "ar2_tf/cli.py", "export/__main__.py", "tuning/__main__.py"}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")
COMMAND = "python -m "  # a flag after this on its line belongs to the command it names
ALLOWED = {  # {file: ({flags}, why)}
    "ar2_tf/runs/splits.py": ({"--val-data-dir"}, "report.json's validation origin, byte for byte as runs record it"),
    "ar2_tf/data/holdout.py": ({"--val-data-dir"}, "quotes that report.json origin"),
    "ar2_tf/errors.py": ({"--batch-size"}, "shows how a command words an argument's name"),
    "ar2_tf/benchmarking/run.py": ({"--porcelain"}, "git's own option (the checkout's state in benchmark.json)"),
    "export/model_config.py": ({"--model_config_file"}, "TF Serving's own flag"),
    "export/verify.py": ({"--all"}, "saved_model_cli's own option"),
    "tuning/report.py": ({"--data-dir", "--corruption", "--severity", "--corruption-backend"},
                         "writes the python -m ar2_tf.train command line of the best config"),
}


def flag_mentions():
    """{file: {flags}} of every flag outside the command modules that follows no `python -m` on its line."""
    found = {}
    for package in PACKAGES:
        for folder, _, names in os.walk(os.path.join(ROOT, package)):
            for name in sorted(n for n in names if n.endswith(".py")):
                path = os.path.relpath(os.path.join(folder, name), ROOT).replace(os.sep, "/")
                if path in COMMAND_MODULES:
                    continue
                with open(os.path.join(ROOT, path), encoding="utf-8") as file:
                    for line in file:
                        for match in FLAG.finditer(line):
                            if COMMAND not in line[:match.start()]:
                                found.setdefault(path, set()).add(match.group())
    return found


def test_the_library_names_no_flag_but_in_a_whole_command_or_where_allowed():
    found = flag_mentions()
    unexplained = {path: sorted(flags - ALLOWED.get(path, (set(),))[0]) for path, flags in found.items()}
    assert {path: flags for path, flags in unexplained.items() if flags} == {}
    stale = {path: sorted(flags - found.get(path, set())) for path, (flags, _) in ALLOWED.items()}
    assert {path: flags for path, flags in stale.items() if flags} == {}  # the list holds no mention that went


def test_the_scan_finds_a_flag_and_tells_a_pointer_to_a_command_apart():
    line = 'raise UserError("pass --image-size 16, or run python -m ar2_tf.evaluate --tent MODEL")'
    flags = [m.group() for m in FLAG.finditer(line) if COMMAND not in line[:m.start()]]
    assert flags == ["--image-size"]
    assert [m.group() for m in FLAG.finditer("a--b, 'x --', `--corruption-mode static`")] == ["--corruption-mode"]
