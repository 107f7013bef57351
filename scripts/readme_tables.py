"""What the bench scripts share: the shared data folder and rewriting a table between the markers of a Markdown page."""

import os
import re

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared")


def write_into(path: str, text: str, marker: str = "bench"):
    """Replaces the text between `<!-- marker:start -->` and `<!-- marker:end -->` in `path`."""
    with open(path) as f:
        doc = f.read()
    pattern = re.compile(rf"(<!-- {marker}:start -->\n).*?(<!-- {marker}:end -->)", re.S)
    if not pattern.search(doc):
        raise SystemExit(f"{path} has no <!-- {marker}:start --> / <!-- {marker}:end --> markers")
    with open(path, "w") as f:
        f.write(pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), doc))
