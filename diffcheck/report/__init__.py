"""Report writers: the console (:mod:`.console`), Markdown (:mod:`.markdown`) and JSON
(:mod:`.jsonout`).

Every writer takes the plain types of :mod:`diffcheck.results` and knows nothing about
SymPy or torch. The small formatting helpers that the writers share live here, so that a
number or a point reads the same in the terminal and in the Markdown report.
"""

from __future__ import annotations

import math
import os
import re
import sys
import tempfile
from pathlib import Path
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
    """A number, a nested list of numbers, a mapping or text, compactly and deterministically.
    A mapping's keys are sorted: a report read back from JSON (``diffcheck merge``), where
    keys are sorted, reads the same as the run that wrote it."""
    if isinstance(value, dict):
        return ", ".join(f"{k}={format_value(value[k])}" for k in sorted(value, key=str))
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


# --- text from case files ---------------------------------------------------------------------

#: terminal escape sequences: CSI (colours, cursor moves), OSC (titles, hyperlinks), and the
#: two-character ones; then every C0/C1 control character and the Unicode direction overrides
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def plain_text(value: Any, one_line: bool = False) -> str:
    """Text from a case file (a name, a description, a message that quotes it) made safe for
    a terminal: escape sequences and control characters removed (tabs become spaces);
    ``one_line`` also joins lines with a space."""
    text = _CONTROLS.sub("", _ESCAPES.sub("", str(value)).replace("\t", " ").replace("\r\n", "\n"))
    if one_line:
        text = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return text


# --- writing files ----------------------------------------------------------------------------

STDOUT = "-"


def write_text(path: str | Path, text: str) -> Path | None:
    """Write ``text`` to ``path``, or to stdout when ``path`` is ``-``.

    A file is written to a temporary file in the same folder and renamed over ``path``:
    a symlink at ``path`` is replaced, never followed (a symlinked ``index.md`` cannot
    overwrite what it points to), and a reader never sees half a file."""
    if str(path) == STDOUT:
        sys.stdout.write(text)
        sys.stdout.flush()
        return None
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(text)
        os.chmod(tmp, 0o644)  # mkstemp makes it private; a report is for reading
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def append_text(path: str | Path, text: str) -> None:
    """Append ``text`` to ``path`` (``$GITHUB_STEP_SUMMARY``), never through a symlink."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, 0o644)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(text)
