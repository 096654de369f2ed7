"""Report writers: the console (:mod:`.console`), Markdown (:mod:`.markdown`) and JSON
(:mod:`.jsonout`).

Every writer takes the plain types of :mod:`diffcheck.results` and knows nothing about
SymPy or torch. The small formatting helpers that the writers share live here, so that a
number or a point reads the same in the terminal and in the Markdown report.
"""

from __future__ import annotations

import math
from typing import Any, Iterable

from ..results import (
    ERROR, FAIL, KINK, NOT_DIFFERENTIABLE, PASS, SINGULAR, SKIPPED, UNSTABLE, UNSUPPORTED, XFAIL, XPASS,
    Result, RunReport,
)

#: the order statuses are listed in (summaries, counts); unknown ones follow, sorted
STATUS_ORDER = (PASS, FAIL, XFAIL, XPASS, ERROR, KINK, SINGULAR, UNSTABLE,
                NOT_DIFFERENTIABLE, UNSUPPORTED, SKIPPED)

#: the words of the summary line, pytest-style ("3 passed, 1 failed")
_SUMMARY_WORDS = {PASS: "passed", FAIL: "failed"}

MISSING = "—"


def ordered_statuses(statuses: Iterable[str]) -> list[str]:
    """``statuses`` without duplicates, in :data:`STATUS_ORDER` and then alphabetically."""
    present = set(statuses)
    known = [s for s in STATUS_ORDER if s in present]
    return known + sorted(present - set(STATUS_ORDER))


def format_number(x: float | int | None, digits: int = 6) -> str:
    """A number in ``%.{digits}g`` style; ``—`` for a missing one, ``nan``/``inf`` as such."""
    if x is None:
        return MISSING
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    if isinstance(x, float):
        if math.isnan(x):
            return "nan"
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    try:
        return f"{float(x):.{digits}g}"
    except (TypeError, ValueError):
        return str(x)


def format_exact(x: float | int | None) -> str:
    """A value with 17 significant digits: enough to tell any two float64 values apart."""
    return format_number(x, digits=17)


def format_value(value: Any) -> str:
    """A number, a nested list of numbers, a mapping or text, compactly and deterministically."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, (int, float)) or hasattr(value, "__float__"):  # numpy scalars too
        return format_number(value)
    return str(value)


def format_point(point: dict[str, Any] | None) -> str:
    """The inputs of a point, ``x=0.5, w=[1, 2]``."""
    if not point:
        return MISSING
    return format_value(point)


def format_cell(value: str | None) -> str:
    """``value``, or ``—`` when missing (a mode or dtype of a claim)."""
    return MISSING if value is None else str(value)


def result_label(result: Result) -> str:
    """``check · mode · dtype`` of a result, leaving out what does not apply."""
    parts = [result.check, result.mode, result.dtype]
    return " · ".join(p for p in parts if p)


def extra_counts(result: Result) -> dict[str, int]:
    """The point classes of ``result`` other than plain passes (kink, singular, …)."""
    return {k: v for k, v in result.counts.items() if k != PASS and v}


def summary_line(report: RunReport, with_time: bool = True) -> str:
    """``"N passed, N failed, … in T s"`` — always starting with the passed and failed
    counts so CI can read them. Other statuses follow when present; case-file and internal
    errors are counted with error results under ``errors``. ``with_time=False`` leaves out
    the `` in T s`` duration."""
    counts = report.counts()
    errors = counts.pop(ERROR, 0) + len(report.errors) + len(report.internal_errors)
    parts = [f"{counts.pop(PASS, 0)} passed", f"{counts.pop(FAIL, 0)} failed"]
    for status in ordered_statuses(counts):
        parts.append(f"{counts[status]} {_SUMMARY_WORDS.get(status, status)}")
    if errors:
        parts.append(f"{errors} error" + ("" if errors == 1 else "s"))
    line = ", ".join(parts)
    return f"{line} in {report.seconds:.2f}s" if with_time else line
