"""Export repaired classifiers for TF Serving: `python -m export --run runs/X --out serving/`.

Modules: `run_folder` (what a run folder provides), `serving_module` (the
signatures), `layout` (versions, atomic installs), `model_config`
(`models.config`), `verify` (reload and compare, signature summaries) and
`exporter` (the library call behind the command line).
"""

import ar2_tf  # noqa: F401  (first: notes a command's launch, see ar2_tf/quiet.py)
