"""The console report: a results table, the details of every failure, the points that were
not plain passes, the case-file errors and a pytest-style summary line.

Everything is printed to a :class:`rich.console.Console` passed in, so the CLI prints to
the terminal and tests capture with ``Console(file=io.StringIO(), width=200)``. User text
(case names, entries such as ``d y[0] / d x[1]``) is never read as rich markup.
"""

from __future__ import annotations

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..results import (
    ERROR, FAIL, KINK, NOT_DIFFERENTIABLE, PASS, SINGULAR, SKIPPED, UNSTABLE, UNSUPPORTED, XFAIL, XPASS,
    Result, RunReport,
)
from . import (
    extra_counts, format_cell, format_exact, format_number, format_point, result_label,
    summary_line,
)

__all__ = ["render_console", "STATUS_STYLES"]

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


def render_console(report: RunReport, console: Console, verbosity: int = 0,
                   errors_console: Console | None = None) -> None:
    """Print ``report`` to ``console``.

    ``verbosity`` is ``-1`` for ``-q`` (only failures and the summary line), ``0`` by default
    and ``1`` or more for ``-v`` (also the message of every result that has one).
    Case-file and internal errors go to ``errors_console`` when given (the CLI passes
    stderr), otherwise to ``console``.
    """
    quiet = verbosity < 0
    shown = [r for r in report.results if r.failed] if quiet else report.results
    if shown:
        console.print(_results_table(shown))
    failures = [r for r in report.results if r.failed]
    if failures:
        console.print()
        console.rule("failures", style="red")
        for result in failures:
            _print_failure(console, result)
    if not quiet:
        _print_point_classes(console, report.results)
        if verbosity > 0:
            _print_messages(console, [r for r in report.results if not r.failed])
    _print_errors(errors_console or console, report)
    style = "bold red" if report.exit_code else "bold green"
    console.print(Text(summary_line(report), style=style), highlight=False)


def _status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLES.get(status, ""))


def _results_table(results: list[Result]) -> Table:
    table = Table(show_edge=False, header_style="bold", pad_edge=False)
    table.add_column("case", overflow="fold")
    table.add_column("check", overflow="fold")
    table.add_column("mode")
    table.add_column("dtype")
    table.add_column("points", justify="right")
    table.add_column("max ULP error", justify="right")
    table.add_column("status")
    for r in results:
        table.add_row(
            Text(r.case), Text(r.check), format_cell(r.mode), format_cell(r.dtype),
            str(r.points), format_number(r.max_ulp_error), _status_text(r.status),
        )
    return table


def _line(console: Console, label: str, value: str) -> None:
    text = Text("  ")
    text.append(f"{label}: ", style="bold")
    text.append(value)
    console.print(text, highlight=False)


def _print_failure(console: Console, r: Result) -> None:
    heading = Text()
    heading.append(r.status.upper(), style=STATUS_STYLES.get(r.status, "bold"))
    heading.append(f" {r.case}  {result_label(r)}", style="bold")
    console.print(heading, highlight=False)
    if r.message:
        _line(console, "message", r.message)
    w = r.worst_point
    if w is not None:
        _line(console, "worst point", format_point(w.point))
        _line(console, "entry", w.entry)
        _line(console, "exact (reference)", format_exact(w.reference))
        _line(console, "torch (autograd)", format_exact(w.autograd))
        _line(console, "errors", f"abs {format_number(w.abs_error)}, "
                                 f"rel {format_number(w.rel_error)}, "
                                 f"ULP {format_number(w.ulp_error)}")
        if w.formula:
            _line(console, "exact derivative", w.formula)
    if r.tolerance:
        _line(console, "tolerance", ", ".join(f"{k} {format_number(v)}"
                                              for k, v in r.tolerance.items()))
    for region in r.details.regions:
        _line(console, "unstable region", region)
    for kink in r.details.kinks:
        if kink.outside:
            _line(console, "kink", f"{format_point(kink.point)}: torch {format_number(kink.torch)} "
                                   f"outside [{format_number(kink.left)}, {format_number(kink.right)}]")
    search = r.details.search
    if search is not None and search.points_line:
        _line(console, "found by --search, pin it with", search.points_line)
    _line(console, "file", r.file)
    console.print()


def _print_point_classes(console: Console, results: list[Result]) -> None:
    for r in results:
        classes = extra_counts(r)
        if not classes:
            continue
        counted = ", ".join(f"{n} point{'' if n == 1 else 's'} {cls}"
                            for cls, n in classes.items())
        console.print(Text(f"{r.case}  {result_label(r)}: {counted}"), highlight=False)


def _print_messages(console: Console, results: list[Result]) -> None:
    for r in results:
        if r.message:
            console.print(Text(f"{r.case}  {result_label(r)}: {r.message}"), highlight=False)
        for region in r.details.regions:
            console.print(Text(f"{r.case}  {result_label(r)}: unstable region: {region}"), highlight=False)
        for note in r.details.notes:
            console.print(Text(f"{r.case}  {result_label(r)}: note: {note}"), highlight=False)


def _print_errors(console: Console, report: RunReport) -> None:
    for error in report.errors:
        console.print(Text(str(error)), highlight=False, soft_wrap=True)
    for error in report.internal_errors:
        console.print(Text("internal error: " + error.rstrip()), highlight=False,
                      soft_wrap=True)
