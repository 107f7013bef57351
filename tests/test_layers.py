"""The layers of the code base: every module imports only its own layer or the layers below it.

`LAYERS` is the one statement of the order (lowest first; docs/development/architecture.md draws it).
Every import is read with `ast`, those inside functions included, so an import deferred for speed still
points down.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("ar2_tf", "tuning", "export")

# Lowest first. A name stands for that module, or that package and everything in it.
LAYERS = (
    ("ar2_tf", "ar2_tf.errors", "ar2_tf.choices", "ar2_tf.quiet", "ar2_tf.output_files", "ar2_tf.safe_paths"),
    ("ar2_tf.corruptions",),
    ("ar2_tf.data",),
    ("ar2_tf.models",),
    ("ar2_tf.method",),
    ("ar2_tf.baselines",),
    ("ar2_tf.evaluation",),
    ("ar2_tf.runs",),
    ("ar2_tf.benchmarking", "tuning", "export"),
    ("ar2_tf.api", "ar2_tf.callbacks", "ar2_tf.cli", "ar2_tf.train", "ar2_tf.evaluate", "ar2_tf.benchmark", "ar2_tf.benchmark_view",
     "ar2_tf.precompute", "tuning.__main__", "export.__main__"),
)

# (importer, imported): the one import that points up, and why it may.
ALLOWED_UPWARD = {
    ("ar2_tf", "ar2_tf.api"): "`ar2_tf.repair` is the package's public door, imported by `__getattr__` when used",
}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    path = ROOT.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def imported_modules(path: pathlib.Path):
    """(line, module) of every import of the project's packages in the file, at any depth."""
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from package import module` imports that module; `from module import name` imports the module
            names = [f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base for alias in node.names]
        else:
            continue
        for name in dict.fromkeys(names):
            if name.split(".")[0] in PACKAGES:
                yield node.lineno, name


def layer_of(module: str) -> int:
    """The index in `LAYERS` of the longest name that covers `module`."""
    covering = [(len(name), index) for index, names in enumerate(LAYERS) for name in names
                if module == name or module.startswith(name + ".")]
    if not covering:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in tests/test_layers.py")
    return max(covering)[1]


def project_files():
    return sorted(path for package in PACKAGES for path in (ROOT / package).rglob("*.py"))


def upward_imports(path):
    importer = module_name(path)
    for line, imported in imported_modules(path):
        if layer_of(imported) > layer_of(importer) and (importer, imported) not in ALLOWED_UPWARD:
            yield (f"{path.relative_to(ROOT)}:{line}: {importer} (layer {layer_of(importer)}) imports {imported} "
                   f"(layer {layer_of(imported)})")


def test_every_module_is_in_a_layer():
    for path in project_files():
        layer_of(module_name(path))


@pytest.mark.parametrize("path", project_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_imports_point_down(path):
    offending = list(upward_imports(path))
    assert not offending, "imports of a higher layer:\n" + "\n".join(offending)


def test_an_upward_import_is_found_and_named(tmp_path, monkeypatch):
    """The check itself: a data module importing the runs layer, from inside a function, is reported."""
    folder = tmp_path / "ar2_tf" / "data"
    folder.mkdir(parents=True)
    (tmp_path / "ar2_tf" / "runs").mkdir()
    (tmp_path / "ar2_tf" / "runs" / "config.py").write_text("")
    module = folder / "leaky.py"
    module.write_text("import os\n\n\ndef f():\n    from ar2_tf.runs import config\n    return config\n")
    monkeypatch.setitem(globals(), "ROOT", tmp_path)
    assert list(upward_imports(module)) == [
        "ar2_tf/data/leaky.py:5: ar2_tf.data.leaky (layer 2) imports ar2_tf.runs.config (layer 7)"]
