"""The Markdown report, ``DIR/index.md``, written to read well on GitHub.

The same :class:`~diffcheck.results.RunReport` always gives the same bytes except for one
header line, ``Generated: …``, that holds the date, time and duration of the run — so a
report kept in a repository diffs cleanly from one run to the next.

GitHub specifics kept in mind here: ``|`` inside a table cell is written ``\\|`` (also
inside code spans); math is written ``$…$`` (``$$…$$`` blocks for long formulas) and never
inside a table cell, because a ``|`` in LaTeX would split the cell; free text is escaped so
that a ``*`` or ``$`` in a message is not read as emphasis or math.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

from ..results import FAIL, CaseReport, DescentStep, KinkFinding, Result, RunReport, SingularPoint
from . import (
    MISSING, extra_counts, format_cell, format_exact, format_number, format_point,
    format_value, ordered_statuses, result_label, summary_line,
)

__all__ = ["render_markdown", "write_markdown", "GENERATED_PREFIX"]

#: the one line of the report that changes from run to run starts with this
GENERATED_PREFIX = "Generated: "

#: formulas longer than this are shown as ``$$…$$`` display blocks
LONG_LATEX = 80

#: the versions named first in the header, in this order; others follow, sorted
_VERSION_ORDER = ("diffcheck", "torch", "sympy", "python")

_KINK_COLUMNS = ("function", "point", "left limit", "right limit", "torch", "convention")


# --- Markdown building blocks -----------------------------------------------------------

def _text(value: Any) -> str:
    """Free text with Markdown's active characters escaped."""
    return re.sub(r"([\\`*_\[\]<>$~])", r"\\\1", str(value))


def _code(value: Any) -> str:
    """``value`` as an inline code span, fenced with more backticks than it contains."""
    text = " ".join(str(value).splitlines())
    if not text:
        return MISSING
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _number(x: Any) -> str:
    return _code(format_number(x)) if x is not None else MISSING


def _cell(value: str) -> str:
    """A table cell: ``|`` escaped, line breaks as ``<br>``."""
    return value.replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]],
           right: Sequence[int] = ()) -> list[str]:
    """A GitHub table; ``right`` holds the indexes of right-aligned (numeric) columns."""
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |",
             "| " + " | ".join("---:" if i in right else "---" for i in range(len(header)))
             + " |"]
    for row in rows:
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines + [""]


def _math(latex: str) -> list[str]:
    """``$…$`` inline, or a ``$$…$$`` block when the formula is long."""
    latex = " ".join(latex.split())
    if len(latex) > LONG_LATEX:
        return ["$$", latex, "$$"]
    return [f"${latex}$"]


def _fenced(text: str, info: str = "text") -> list[str]:
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (longest + 1)
    return [fence + info, text.rstrip("\n"), fence, ""]


def _holds(value: Any, method: Any = None) -> str:
    """Whether a claim holds, with how it was decided (``simplify``, ``numeric``)."""
    if value is True:
        word = "✅ yes"
    elif value is False:
        word = "❌ no"
    else:
        return MISSING
    return f"{word} ({_text(method)})" if method else word


def _as_list(value: Any) -> list:
    if not value:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _value(value: Any) -> str:
    """A claimed, exact or torch value (number, mapping, expression text) as code."""
    if value is None:
        return MISSING
    return _code(format_value(value))


# --- sections ---------------------------------------------------------------------------

def _header(report: RunReport, generated: str) -> list[str]:
    versions = report.versions
    names = [n for n in _VERSION_ORDER if n in versions]
    names += sorted(n for n in versions if n not in _VERSION_ORDER)
    facts = [f"{name} {_code(versions[name])}" for name in names]
    seed = _code(report.seed) if report.seed is not None else "each case's own"
    facts.append(f"seed {seed}")
    return ["# diffcheck report", "",
            f"{GENERATED_PREFIX}{generated}", "",
            " · ".join(facts), "",
            # the duration belongs on the Generated line, not here
            f"**{_text(summary_line(report, with_time=False))}**", ""]


def _counts(report: RunReport) -> list[str]:
    counts = report.counts()
    rows = [[status, str(counts[status])] for status in ordered_statuses(counts)]
    if report.errors:
        rows.append(["case-file errors", str(len(report.errors))])
    if report.internal_errors:
        rows.append(["internal errors", str(len(report.internal_errors))])
    if not rows:
        return ["No case was found.", ""]
    return ["## Outcomes", ""] + _table(["status", "count"], rows, right=[1])


def _status(status: str, failed: bool) -> str:
    return f"**{status}**" if failed else status


def _summary(report: RunReport) -> list[str]:
    if not report.results:
        return []
    rows = [[_text(r.case), _text(r.check), format_cell(r.mode), format_cell(r.dtype),
             str(r.points), format_number(r.max_abs_error), format_number(r.max_rel_error),
             format_number(r.max_ulp_error), _status(r.status, r.failed)]
            for r in report.results]
    header = ["case", "check", "mode", "dtype", "points", "max abs", "max rel", "max ULP",
              "status"]
    return ["## Summary", ""] + _table(header, rows, right=[4, 5, 6, 7])


def _kink_row(kink: KinkFinding) -> tuple[str, ...]:
    return (_code(kink.function), _code(format_point(kink.point)),
            _number(kink.left), _number(kink.right),
            _number(kink.torch), _text(kink.convention))


def _kinks(rows: Iterable[tuple[str, ...]]) -> list[str]:
    unique = list(dict.fromkeys(rows))  # first-seen order, duplicates dropped
    return _table(_KINK_COLUMNS, unique, right=[2, 3, 4]) if unique else []


def _conventions(report: RunReport) -> list[str]:
    rows = [_kink_row(k) for r in report.results for k in r.details.kinks]
    table = _kinks(rows)
    if not table:
        return []
    return ["## Subgradient conventions", "",
            "Where the function has a kink, the derivative has a different limit from each "
            "side; torch returns one value there. These are the values it chose.", ""] + table


def _errors(report: RunReport) -> list[str]:
    lines: list[str] = []
    if report.errors:
        lines += ["## Case-file errors", ""]
        for err in report.errors:
            where = f"{_code(err.location)}: " if err.location else ""
            hint = f" *Hint:* {_text(err.hint)}" if err.hint else ""
            lines.append(f"- {where}{_text(err.message)}{hint}")
        lines.append("")
    if report.internal_errors:
        lines += ["## Internal errors", "",
                  "diffcheck itself failed; this is a bug worth reporting.", ""]
        for err in report.internal_errors:
            lines += _fenced(err)
    return lines


def _case(case: CaseReport) -> list[str]:
    lines = [f"### {_text(case.name)}", ""]
    if case.description:
        lines += [_text(case.description).strip(), ""]
    facts = [f"- File: {_code(case.file)}",
             f"- Status: {_status(case.status, case.status == FAIL)}"]
    if case.xfail:
        facts.append(f"- Expected to fail: {_text(case.xfail)}")
    if case.expr:
        facts.append(f"- Expression: {_code(case.expr)}")
    lines += facts + [""]
    if case.expr_latex:
        lines += ["Mathematically:", ""] + _math(case.expr_latex) + [""]
    if case.derivatives_latex:
        lines += ["Exact derivatives:", ""]
        for label, latex in case.derivatives_latex:
            math = _math(latex)
            if len(math) == 1:
                lines.append(f"- {_text(label)}: {math[0]}")
            else:
                lines += [f"- {_text(label)}:", ""] + ["  " + m for m in math]
        lines.append("")
    lines += _claims(case.results)
    for result in case.results:
        lines += _result(result)
    return lines


def _claims(results: list[Result]) -> list[str]:
    rows = []
    for r in results:
        if not r.check.startswith("expect."):
            continue
        for claim in r.details.claim:
            label = claim.label or claim.claim or r.check
            if claim.at:
                label = f"{label} at {format_point(claim.at)}"
            rows.append([_text(label), _value(claim.claimed),
                         _value(claim.exact), _value(claim.torch),
                         _holds(claim.holds, claim.method or None)])
    if not rows:
        return []
    header = ["claim", "note's value", "exact value", "torch's value", "holds"]
    return ["#### Claims", ""] + _table(header, rows)


def _result(r: Result) -> list[str]:
    """The details of one result: its failure, then any extra facts the checker left."""
    body: list[str] = []
    if r.failed:
        body += _failure(r)
    classes = extra_counts(r)
    if classes:
        body += ["Points that are not plain passes: "
                 + ", ".join(f"{n} {_text(cls)}" for cls, n in classes.items())
                 + f" (of {r.points} compared).", ""]
    details = r.details
    if details.trajectory:
        body += ["Gradient-descent steps:", ""] + _trajectory(details.trajectory)
    if details.kinks:
        body += ["Kinks:", ""] + _kinks(_kink_row(k) for k in details.kinks)
    if details.singular:
        body += ["Singular points:", ""] + _singular(details.singular)
    if details.regions:
        body += ["Regions:", ""] + [f"- {_text(region)}" for region in details.regions] + [""]
    if not body:
        return []
    return [f"#### {_text(result_label(r))} — {_status(r.status, r.failed)}", ""] + body


def _failure(r: Result) -> list[str]:
    lines = [_text(r.message), ""] if r.message else []
    facts = []
    w = r.worst_point
    if w is not None:
        facts += [
            f"- Worst point: {_code(format_point(w.point))}",
            f"- Entry: {_code(w.entry)}",
            f"- Exact value (reference): {_code(format_exact(w.reference))}",
            f"- Torch's value (autograd): {_code(format_exact(w.autograd))}",
            f"- Errors: abs {_number(w.abs_error)}, rel {_number(w.rel_error)}, "
            f"ULP {_number(w.ulp_error)}",
        ]
        if w.formula:
            facts.append(f"- Exact derivative: {_code(w.formula)}")
    if r.tolerance:
        facts.append("- Tolerance: " + ", ".join(f"{_text(k)} {_number(v)}"
                                                 for k, v in r.tolerance.items()))
    return lines + facts + [""] if facts else lines


def _trajectory(steps: Iterable[DescentStep]) -> list[str]:
    rows = [[str(s.step), _value(s.claimed), _value(s.exact), _value(s.torch), _holds(s.holds)]
            for s in steps]
    return _table(["step", "claimed", "exact", "torch", "holds"], rows, right=[0])


def _singular(points: Iterable[SingularPoint]) -> list[str]:
    rows = [[_code(format_point(p.point)), _value(p.exact),
             _number(p.torch), _holds(p.matches_limit)]
            for p in points]
    return _table(["point", "exact", "torch", "matches limit"], rows)


# --- public -------------------------------------------------------------------------------

def render_markdown(report: RunReport, generated: str) -> str:
    """The Markdown text of ``report``; ``generated`` fills the ``Generated:`` line."""
    lines = _header(report, generated)
    lines += _counts(report)
    lines += _summary(report)
    lines += _conventions(report)
    lines += _errors(report)
    if report.cases:
        lines += ["## Cases", ""]
        for case in report.cases:
            lines += _case(case)
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def write_markdown(report: RunReport, directory: str | Path,
                   now: datetime | None = None) -> Path:
    """Write ``directory/index.md`` (creating the folder) and return its path.

    ``now`` (default: the current time) and the run's duration go on the ``Generated:``
    line, the only line that differs between two reports of the same results.
    """
    now = now or datetime.now(timezone.utc)
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    path = Path(directory) / "index.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = render_markdown(report, f"{stamp} (the run took {report.seconds:.2f} s)")
    path.write_text(text, encoding="utf-8")
    return path
