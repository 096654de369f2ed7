"""The machine-readable report: ``{"version": 1, "results": [...], ...}``.

The same :class:`~diffcheck.results.RunReport` always gives the same bytes: keys sorted,
two-space indent, non-finite floats written as the strings ``"nan"``, ``"inf"``, ``"-inf"``
(JSON has no such numbers), and a final newline.
"""

from __future__ import annotations

import json
import re
import math
from pathlib import Path
from typing import Any

from ..results import RunReport
from . import write_text

__all__ = ["dumps", "write_json"]


def _fallback(value: Any) -> Any:
    """JSON form of what ``json`` cannot encode itself (numpy scalars and arrays, paths)."""
    if hasattr(value, "tolist"):  # numpy scalar or array
        return _finite(value.tolist())
    return str(value)


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


#: a JSON array of numbers (and nulls) that the indent spread over lines, one per line
_NUMBERS = re.compile(r"\[\n\s*(-?[0-9][0-9.eE+-]*|null)(?:,\n\s*(?:-?[0-9][0-9.eE+-]*|null))*\n\s*\]")


def _one_line(match: re.Match) -> str:
    return "[" + ", ".join(part.strip() for part in match.group(0)[1:-1].split(",")) + "]"


def dumps(report: RunReport) -> str:
    """The JSON text of ``report``: indented, except that an array of numbers is written on
    one line (the per-point data of the plots would otherwise take a line a number)."""
    text = json.dumps(report.to_dict(), sort_keys=True, indent=2, ensure_ascii=False,
                      allow_nan=False, default=_fallback)
    return _NUMBERS.sub(_one_line, text) + "\n"


def write_json(report: RunReport, path: str | Path) -> Path | None:
    """Write ``report`` as JSON to ``path`` (creating its folder; ``-`` is stdout, and a
    symlink at ``path`` is replaced, never followed) and return the path."""
    return write_text(path, dumps(report))
