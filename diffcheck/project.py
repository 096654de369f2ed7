"""Settings a project declares for diffcheck in its own ``pyproject.toml``.

Trust is declared by the project that owns the case files, never by a case file: the only
setting read here is ``allow-imports`` under ``[tool.diffcheck]`` of the ``pyproject.toml`` in
the directory diffcheck runs from (the same directory `imports:` finds modules in)::

    [tool.diffcheck]
    allow-imports = true   # `imports:` in case files may run this project's Python code
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        import tomllib  # Python 3.11+
    except ModuleNotFoundError:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ModuleNotFoundError:
            return {}
    try:
        with open(path, "rb") as stream:
            return tomllib.load(stream)
    except (OSError, ValueError):
        return {}


def diffcheck_settings(directory: str | os.PathLike | None = None) -> dict[str, Any]:
    """The ``[tool.diffcheck]`` table of ``directory``'s pyproject.toml (default: the current
    directory), or ``{}``."""
    path = Path(directory if directory is not None else os.getcwd()) / "pyproject.toml"
    if not path.is_file():
        return {}
    table = _read_toml(path).get("tool", {}).get("diffcheck", {})
    return table if isinstance(table, dict) else {}


def allow_imports_setting(directory: str | os.PathLike | None = None) -> bool:
    """``allow-imports = true`` under ``[tool.diffcheck]`` (only the boolean true counts)."""
    return diffcheck_settings(directory).get("allow-imports") is True
