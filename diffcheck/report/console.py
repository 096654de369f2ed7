"""The console report, laid out as pytest lays out a run.

By default: one line per case file (its verdict, its number of cases and a mark per case:
``.`` pass, ``F`` fail, ``x`` xfail, ``X`` unexpected pass, ``E`` error), a line for each
xfail case under its file, the case-file errors, then a block per failure and one summary
line counting cases and results by status. ``-v`` (verbosity 1) adds a line per case, the
results table and every result's message; ``-vv`` adds the per-point details (kinks,
singular points, claims, descent steps, notes). ``-q`` (-1) prints only the failures and the
summary.

Wherever an error is shown, the headline is the number that decides, the worst error ÷ the
allowed; the ULP error (at the same point) comes second. Everything is printed to a
:class:`rich.console.Console` passed in (tests use ``Console(file=io.StringIO(), width=80)``).
Text from case files is never read as rich markup, and terminal escapes and control
characters in it are removed (:func:`diffcheck.report.plain_text`).
"""

from __future__ import annotations

import io
import math
import textwrap
from collections import OrderedDict
from typing import Any, Iterable

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..results import (
    ERROR, FAIL, KINK, NOT_DIFFERENTIABLE, PASS, SINGULAR, SKIPPED, UNSTABLE, UNSUPPORTED, XFAIL, XPASS,
    CaseReport, Result, RunReport,
)
from . import (
    format_cell, format_exact, format_number, format_point, format_value, plain_text,
    result_label, summary_line,
)

__all__ = ["render_console", "failure_block", "failure_text", "case_mark", "STATUS_STYLES"]

#: the colour of each status; unknown statuses are printed plain
STATUS_STYLES = {
    PASS: "green",
    FAIL: "bold red",
    XFAIL: "yellow",
    XPASS: "bold red",
    ERROR: "bold red",
    KINK: "cyan",
    SINGULAR: "magenta",
    UNSTABLE: "bold red",
    NOT_DIFFERENTIABLE: "bold red",
    SKIPPED: "dim",
    UNSUPPORTED: "yellow",
}

#: one character per case on a file's line, as pytest marks tests
MARKS = {PASS: ".", FAIL: "F", XFAIL: "x", XPASS: "X", ERROR: "E"}
_MARK_STYLES = {".": "green", "F": "bold red", "x": "yellow", "X": "bold red", "E": "bold red"}

#: the longest a rule gets (a log 160 columns wide reads better with short rules)
RULE_WIDTH = 80

#: the width of the verdict column of the file and case lines
VERDICT_WIDTH = 6


def render_console(report: RunReport, console: Console, verbosity: int = 0,
                   errors_console: Console | None = None) -> None:
    """Print ``report`` to ``console``; case-file and internal errors go to
    ``errors_console`` when given (the CLI passes stderr), otherwise to ``console``."""
    errors_console = errors_console or console
    if verbosity >= 0:
        if verbosity >= 1:
            _print_case_lines(console, report.cases)
        else:
            _print_file_lines(console, report.cases)
    _print_errors(errors_console, report)
    if verbosity >= 1 and report.results:
        console.print()
        console.print(results_table(report.results))
        _print_messages(console, report.results, verbosity)
    failures = [r for r in report.results if r.failed]
    if failures:
        console.print()
        _rule(console, "FAILURES", "red")
        where = {(c.file, c.name): c.where for c in report.cases}
        for (file, case), results in _by_case(failures).items():
            failure_block(console, results, where.get((file, case), file))
    style = "bold red" if report.exit_code else "bold green"
    console.print(Text(run_summary(report), style=style), highlight=False)


# --- the verdict lines ------------------------------------------------------------------------

def case_mark(case: CaseReport) -> str:
    """``.``, ``F``, ``x``, ``X`` or ``E`` for a case."""
    statuses = {r.status for r in case.results}
    if ERROR in statuses:
        return MARKS[ERROR]
    if XPASS in statuses:
        return MARKS[XPASS]
    return MARKS.get(case.status, "?")


def _verdict(word: str, style: str) -> Text:
    return Text(word.ljust(VERDICT_WIDTH), style=style)


def _print_file_lines(console: Console, cases: list[CaseReport]) -> None:
    by_file: OrderedDict[str, list[CaseReport]] = OrderedDict()
    for case in cases:
        by_file.setdefault(case.file, []).append(case)
    for file, file_cases in by_file.items():
        marks = [case_mark(c) for c in file_cases]
        failed = any(m in "FXE" for m in marks)
        line = _verdict("FAIL" if failed else "pass", "bold red" if failed else "green")
        line.append(plain_text(file, one_line=True))
        n = len(file_cases)
        line.append(f"  {n} case{'' if n == 1 else 's'} ")
        for m in marks:
            line.append(m, style=_MARK_STYLES.get(m, ""))
        console.print(line, highlight=False, soft_wrap=True)
        for case in file_cases:
            if case_mark(case) == "x":
                _print_case_line(console, case, indent="  ", reason=True)


def _print_case_lines(console: Console, cases: list[CaseReport]) -> None:
    for case in cases:
        _print_case_line(console, case, reason=True)


def _print_case_line(console: Console, case: CaseReport, indent: str = "", reason: bool = False) -> None:
    mark = case_mark(case)
    word = {".": "pass", "F": "FAIL", "x": "xfail", "X": "XPASS", "E": "ERROR"}.get(mark, str(case.status))
    line = Text(indent)
    line.append_text(_verdict(word, _MARK_STYLES.get(mark, "")))
    line.append(plain_text(case.name, one_line=True), style="bold")
    line.append(f"  {plain_text(case.where, one_line=True)}")
    if reason and mark == "x" and case.xfail:
        line.append(f"  {plain_text(case.xfail, one_line=True)}", style="dim")
    console.print(line, highlight=False, no_wrap=True, overflow="ellipsis", crop=True)


# --- failures ---------------------------------------------------------------------------------

def failure_text(case: CaseReport, width: int = 80) -> str:
    """The failure block of ``case`` as plain text (no colour): what the pytest plugin and
    the Python API show for a failing case. Empty when nothing in it failed."""
    out = io.StringIO()
    console = Console(file=out, width=width, color_system=None, highlight=False, emoji=False)
    failures = [r for r in case.results if r.failed]
    if failures:
        failure_block(console, failures, case.where)
    return out.getvalue()


def _by_case(results: Iterable[Result]) -> OrderedDict[tuple[str, str], list[Result]]:
    out: OrderedDict[tuple[str, str], list[Result]] = OrderedDict()
    for r in results:
        out.setdefault((r.file, r.case), []).append(r)
    return out


def _rule(console: Console, title: str, style: str) -> None:
    """``_____ title _____`` across the console (just the title when it is wider)."""
    title = f" {title} "
    fill = max(0, min(console.width, RULE_WIDTH) - len(title))
    console.print(Text("_" * (fill // 2) + title + "_" * (fill - fill // 2), style=style),
                  highlight=False, no_wrap=True, overflow="ellipsis", crop=True)


def ratio_text(ratio: float | None) -> str:
    """The error ÷ allowed as a headline figure: ``27.3 × allowed``."""
    return f"{format_number(ratio, 3)} × allowed" if ratio is not None else "—"


def failure_block(console: Console, results: list[Result], where: str) -> None:
    """The failures of one case: a rule with the case's name, where it is, then each failing
    result with its worst point, both values, the errors there (error ÷ allowed first),
    the tolerance, the formula and the facts that explain it."""
    first = results[0]
    _rule(console, f"{first.status.upper()} {plain_text(first.case, one_line=True)}", "red")
    console.print(Text(plain_text(where, one_line=True), style="bold"), highlight=False)
    shown: dict[tuple, str] = {}
    for r in results:
        head = Text()
        head.append(r.status.upper(), style=STATUS_STYLES.get(r.status, "bold"))
        head.append(f" {plain_text(result_label(r), one_line=True)}", style="bold")
        if r.ratio is not None and r.compared:
            head.append(f": error {ratio_text(r.ratio)}", style="bold")
        console.print(head, highlight=False)
        w = r.worst_point
        same = (w.entry, w.reference, w.autograd, str(w.point), r.ratio) if w is not None else None
        if same is not None and same in shown:  # another mode of the same computation: say it once
            _fact(console, "same", f"worst point, values and error as {shown[same]}")
            continue
        if same is not None:
            shown[same] = result_label(r)
        for label, value in failure_facts(r):
            _fact(console, label, value)
    console.print()


#: where the value of a fact starts: two spaces, the longest label, a space
FACT_INDENT = 2 + len("worst point") + 2


def _fact(console: Console, label: str, value: str) -> None:
    """``  label       value``, the value wrapped under itself at the console's width."""
    width = max(20, console.width - FACT_INDENT)
    lines = []
    for paragraph in plain_text(value).splitlines() or [""]:
        lines += textwrap.wrap(paragraph, width, break_on_hyphens=False) or [""]
    text = Text("  ")
    text.append(label.ljust(FACT_INDENT - 2), style="bold")
    text.append(("\n" + " " * FACT_INDENT).join(lines))
    console.print(text, highlight=False, no_wrap=True, crop=False)


def failure_facts(r: Result) -> list[tuple[str, str]]:
    """The (label, text) lines of a failing result's block, in reading order."""
    facts: list[tuple[str, str]] = []
    if r.message:
        facts.append(("what", r.message))
    w = r.worst_point
    if w is not None:
        facts += [("worst point", format_point(w.point)), ("entry", w.entry),
                  ("exact", format_exact(w.reference)), ("torch", format_exact(w.autograd))]
        errors = f"abs {format_number(w.abs_error)}, rel {format_number(w.rel_error)}"
        if r.ratio is not None:
            errors = f"{ratio_text(r.ratio)} (" + errors + ")"
        facts.append(("error", errors))
        facts.append(("ULP", f"{format_number(w.ulp_error)} at the same point"))
    if r.tolerance:
        facts.append(("allowed", _allowed(r.tolerance) + _granted(r)))
    if w is not None and w.formula:
        facts.append(("formula", w.formula))
    for region in r.details.regions:
        facts.append(("unstable", region))
    for kink in r.details.kinks:
        if kink.outside:
            facts.append(("kink", f"{format_point(kink.point)}: torch {format_number(kink.torch)} outside "
                                  f"[{format_number(kink.left)}, {format_number(kink.right)}]"))
    for row in r.details.claim:
        if row.holds is not True:
            facts.append(("claim", _claim_text(row)))
    if r.details.torch_error:
        facts.append(("torch raised", str(r.details.torch_error)))
    search = r.details.search
    if search is not None and search.points_line:
        facts.append(("pin it with", search.points_line))
    return facts


def _granted(r: Result) -> str:
    """When the worst point was judged by more than the tolerance's rule (the conditioning,
    underflow or factorization allowance of diffcheck.compare): what it was allowed there."""
    w, tol = r.worst_point, r.tolerance
    if w is None or not r.ratio or not math.isfinite(r.ratio) or tol.get("rule") != "default":
        return ""
    try:
        allowed = w.abs_error / r.ratio
        rule = tol["rtol"] * abs(w.reference) + tol["atol"]
    except (KeyError, TypeError, ZeroDivisionError):
        return ""
    if not math.isfinite(allowed) or allowed <= rule * 1.01:
        return ""
    return f"; {format_number(allowed, 3)} at the worst point, with the conditioning allowance (see what)"


def _allowed(tolerance: dict[str, float]) -> str:
    rtol, atol = tolerance.get("rtol"), tolerance.get("atol")
    if rtol is not None and atol is not None and set(tolerance) <= {"rtol", "atol", "rule"}:
        rule = f" ({tolerance['rule']} tolerance)" if tolerance.get("rule") else ""
        return f"rtol {format_number(rtol, 3)} · |exact| + atol {format_number(atol, 3)}{rule}"
    return ", ".join(f"{k} {format_number(v)}" for k, v in tolerance.items())


def _value(value: Any) -> str:
    return format_value(value) if value is not None else "—"


def _claim_text(row: Any) -> str:
    at = f" at {format_point(row.at)}" if row.at else ""
    verdict = "undecided" if row.holds is None else "false"
    return (f"{row.label}{at}: claimed {_value(row.claimed)}, exact {_value(row.exact)}, "
            f"torch {_value(row.torch)} ({verdict})")


# --- -v: the table and the messages -------------------------------------------------------------

def _status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def results_table(results: list[Result]) -> Table:
    """Every result: case, check, mode, dtype, points, error ÷ allowed, status."""
    table = Table(show_edge=False, header_style="bold", pad_edge=False, box=None)
    table.add_column("case", overflow="fold", ratio=3)
    table.add_column("check", overflow="fold", ratio=2)
    table.add_column("mode", overflow="fold")
    table.add_column("dtype", overflow="fold")
    table.add_column("pts", justify="right", no_wrap=True)
    table.add_column("err÷allowed", justify="right", no_wrap=True)
    table.add_column("status", no_wrap=True)
    for r in results:
        table.add_row(
            Text(plain_text(r.case, one_line=True)), Text(plain_text(r.check, one_line=True)),
            format_cell(r.mode), format_cell(r.dtype), str(r.points),
            format_number(r.ratio, 3) if r.compared else "—", _status_text(r.status),
        )
    return table


def _print_messages(console: Console, results: list[Result], verbosity: int) -> None:
    for r in results:
        if r.failed:
            continue  # its block says it all
        label = f"{plain_text(r.case, one_line=True)} · {plain_text(result_label(r), one_line=True)}"
        lines = [r.message] if r.message else []
        lines += [f"unstable region: {region}" for region in r.details.regions]
        if verbosity >= 2:
            lines += [f"note: {note}" for note in r.details.notes]
            lines += _point_details(r)
        for line in lines:
            text = Text(f"{label} ({r.status}): ", style="dim")
            text.append(plain_text(line))
            console.print(text, highlight=False)


def _point_details(r: Result) -> list[str]:
    """-vv: the facts at single points: kinks, singular points, claims, descent steps."""
    out = []
    w = r.worst_point
    if w is not None:
        out.append(f"worst point {format_point(w.point)} {w.entry}: exact {format_exact(w.reference)}, "
                   f"torch {format_exact(w.autograd)}, ULP {format_number(w.ulp_error)}")
    for k in r.details.kinks:
        out.append(f"kink at {format_point(k.point)} {k.entry}: limits [{format_number(k.left)}, "
                   f"{format_number(k.right)}], torch {format_number(k.torch)}: {k.convention}")
    for s in r.details.singular:
        out.append(f"singular at {format_point(s.point)} {s.entry}: exact {s.exact}, limit {s.limit}, "
                   f"torch {format_number(s.torch)}" + (" (the limit)" if s.matches_limit else ""))
    for row in r.details.claim:
        out.append(_claim_text(row).replace("(false)", "(holds)" if row.holds else "(false)"))
    for step in r.details.trajectory:
        out.append(f"descent step {step.step}: claimed {_value(step.claimed)}, exact {_value(step.exact)}, "
                   f"torch {_value(step.torch)}")
    return out


# --- errors and the summary ---------------------------------------------------------------------

def error_line(error: Any) -> Text:
    """A case-file error: ``ERROR file:line:column: message (hint)``."""
    text = _verdict("ERROR", "bold red")
    text.append(plain_text(str(error), one_line=True))
    return text


def _print_errors(console: Console, report: RunReport) -> None:
    for error in report.errors:  # one line: the terminal wraps it, file:line:column stays whole
        console.print(error_line(error), highlight=False, soft_wrap=True)
    for error in report.internal_errors:
        console.print(Text("internal error: " + plain_text(error.rstrip())), highlight=False,
                      soft_wrap=True)


def run_summary(report: RunReport) -> str:
    """``454 passed, 0 failed, 29 xfail, … · 64 cases: 53 passed, 11 xfail in 24.72s``: the
    results by status (:func:`diffcheck.report.summary_line`, passed and failed first so
    that CI can read them), then the cases by verdict."""
    by_case: dict[str, int] = {}
    for case in report.cases:
        word = {".": "passed", "F": "failed", "x": "xfail", "X": "xpass", "E": "error"}[case_mark(case)]
        by_case[word] = by_case.get(word, 0) + 1
    n = len(report.cases)
    cases = f"{n} case{'' if n == 1 else 's'}"
    if by_case:
        order = ["passed", "failed", "xfail", "xpass", "error"]
        cases += ": " + ", ".join(f"{by_case[w]} {w}" for w in order if w in by_case)
    return f"{summary_line(report, with_time=False)} · {cases} in {report.seconds:.2f}s"


__all__ += ["run_summary", "error_line", "results_table", "failure_facts", "ratio_text"]
