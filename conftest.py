"""Root pytest hooks: collect the package's docstring examples only where their modules import.

``pytest.ini`` collects ``torchrl_newt/`` for ``--doctest-modules``; domain modules import their
simulator at the top, so on a machine without that extra their examples are skipped, not errors.
"""

from __future__ import annotations

import importlib
from pathlib import Path

_ROOT = Path(__file__).resolve().parent
_PKG = _ROOT / "torchrl_newt"


def pytest_ignore_collect(collection_path, config):
    path = Path(collection_path)
    if path.suffix != ".py" or _PKG not in path.parents:
        return None
    parts = path.relative_to(_ROOT).with_suffix("").parts
    name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as err:  # an optional simulator is missing
        if err.name and not err.name.startswith("torchrl_newt"):
            return True
        raise
    except Exception as err:  # gymnasium reports missing extras with its own error type
        if type(err).__name__ == "DependencyNotInstalled":
            return True
        raise
    return None
