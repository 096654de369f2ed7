"""The Markdown report, ``DIR/index.md`` (and ``DIR/files/*.md``), written to read well on GitHub.

It opens with an overview: one row per case with its verdict and its worst error ÷ allowed
(the number that decides), failing cases first, each name linking to the case's details and
to its ``file:line``. Failing cases follow, expanded; passing cases are collapsed in
``<details>``. A run of more than :data:`PAGE_CASES` cases from several case files is
split (:func:`render_pages`): ``index.md`` keeps the overview (by file), the cases that did
not plainly pass and the failures, and each case file gets a page in ``DIR/files/``. A
derivative is shown as one formula (a matrix capped in size,
:mod:`diffcheck.symbolic.display`), never entry by entry. With matplotlib (the ``plots``
extra) each case gets its plots (:mod:`.plots`) as PNG files in ``DIR/plots/``.

The same :class:`~diffcheck.results.RunReport` always gives the same bytes except for one
header line, ``Generated: …``, that holds the date, time and duration of the run — so a
report kept in a repository diffs cleanly from one run to the next. No other line holds a
time.

GitHub specifics kept in mind here: ``|`` inside a table cell is written ``\\|`` (also
inside code spans); math is written ``$…$`` (``$$…$$`` blocks for long formulas) and never
inside a table cell, because a ``|`` in LaTeX would split the cell; free text is escaped so
that a ``*`` or ``$`` in a message is not read as emphasis or math; Markdown inside
``<details>`` needs a blank line after ``<summary>``.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..results import FAIL, PASS, XFAIL, CaseReport, DescentStep, KinkFinding, Result, RunReport, SingularPoint
from . import (
    MISSING, extra_counts, format_cell, format_exact, format_number, format_point,
    format_value, ordered_statuses, plain_text, result_label, summary_line, write_text,
)

__all__ = ["render_markdown", "render_pages", "write_markdown", "GENERATED_PREFIX", "PLOTS_DIR", "PAGES_DIR"]

#: the one line of the report that changes from run to run starts with this
GENERATED_PREFIX = "Generated: "

#: formulas longer than this are shown as ``$$…$$`` display blocks
LONG_LATEX = 80

#: the folder (inside the report's) that holds the plots
PLOTS_DIR = "plots"

#: the folder (inside the report's) of the pages of a report split by case file
PAGES_DIR = "files"

#: a run of more cases than this gets a page per case file (render_pages)
PAGE_CASES = 40

#: the versions named first in the header, in this order; others follow, sorted
_VERSION_ORDER = ("diffcheck", "torch", "sympy", "python")

_KINK_COLUMNS = ("function", "point", "left limit", "right limit", "torch", "convention")
_VERDICT = {FAIL: "**fail**", XFAIL: "xfail", PASS: "pass"}
_ORDER = {FAIL: 0, XFAIL: 1, PASS: 2}


# --- Markdown building blocks -----------------------------------------------------------

def _text(value: Any) -> str:
    """Free text (often from a case file) as one line of inert Markdown: control characters
    and terminal escapes removed, line breaks joined (a newline in a description cannot
    start a heading, a list or a table), the active characters escaped, and a leading
    ``#``, ``>``, ``-``, ``+``, ``=`` or ``1.`` escaped so it is never block syntax."""
    text = plain_text(value, one_line=True)
    text = re.sub(r"([\\`*_\[\]<>$~#!&])", r"\\\1", text)
    text = re.sub(r"^(\d+)([.)])", r"\1\\\2", text)
    return re.sub(r"^([>+=-])", r"\\\1", text)


def _code(value: Any) -> str:
    """``value`` as an inline code span, fenced with more backticks than it contains."""
    text = plain_text(value, one_line=True)
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
    return ["Results by status: " + ", ".join(f"{n} {_text(s)}" for s, n in rows) + ".", ""]


def _status(status: str, failed: bool) -> str:
    return f"**{status}**" if failed else status


def _anchor(case: CaseReport) -> str:
    return "case-" + re.sub(r"[^A-Za-z0-9_-]+", "-", case.name).strip("-").lower()


def _worst_ratio(results: Iterable[Result]) -> float | None:
    ratios = [r.ratio for r in results if r.ratio is not None and r.ratio == r.ratio]
    return max(ratios) if ratios else None


def _ratio(x: float | None) -> str:
    return _code(format_number(x, 3)) if x is not None else MISSING


def _link(case: CaseReport, base: Path | None) -> str:
    """``file:line`` of the case, linked relative to the report's folder (GitHub's ``#L12``)."""
    where = f"{case.file}:{case.line}" if case.line else case.file
    if case.file.startswith("<"):
        return _code(where)
    target = case.file
    if base is not None:
        try:
            target = os.path.relpath(os.path.abspath(case.file), os.path.abspath(base))
        except ValueError:  # another drive
            target = os.path.abspath(case.file)
    target = target.replace(os.sep, "/") + (f"#L{case.line}" if case.line else "")
    return f"[{_code(where)}]({target.replace(' ', '%20').replace(')', '%29')})"


def _tally(results: Iterable[Result]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r.status] = counts.get(r.status, 0) + 1
    return " · ".join(f"{counts[s]} {s}" for s in ordered_statuses(counts))


def _ordered(cases: Sequence[CaseReport]) -> list[CaseReport]:
    return sorted(cases, key=lambda c: _ORDER.get(c.status, 0))  # stable: run order within a verdict


def _overview(cases: Sequence[CaseReport], base: Path | None,
              page: Callable[[CaseReport], str] = lambda case: "") -> list[str]:
    """One row per case; ``page(case)`` is the page that holds its details ("": this one)."""
    if not cases:
        return []
    rows = [[f"[{_text(c.name)}]({page(c)}#{_anchor(c)})", _VERDICT.get(c.status, _text(c.status)),
             _ratio(_worst_ratio(c.results)), _tally(c.results) or MISSING, _link(c, base)]
            for c in _ordered(cases)]
    return (["One row per case, failing cases first. *Worst error ÷ allowed* is the largest "
             "error of any result of the case divided by what the tolerance allows there: "
             "above 1 fails.", ""]
            + _table(["case", "verdict", "worst error ÷ allowed", "results", "file"], rows, right=[2]))


def _file_overview(groups: list[tuple[str, str, list[CaseReport]]]) -> list[str]:
    """One row per case file: its page, its cases' verdicts and its worst error ÷ allowed."""
    rows = []
    for file, page, cases in groups:
        verdicts: dict[str, int] = {}
        for c in cases:
            verdicts[c.status] = verdicts.get(c.status, 0) + 1
        rows.append([f"[{_code(file)}]({page})", str(len(cases)),
                     " · ".join(f"{verdicts[s]} {_VERDICT.get(s, _text(s))}" for s in ordered_statuses(verdicts)),
                     _ratio(_worst_ratio(r for c in cases for r in c.results)),
                     _tally(r for c in cases for r in c.results) or MISSING])
    return (["One page per case file: its cases in an overview, failing cases expanded, passing "
             "ones collapsed.", ""]
            + _table(["case file", "cases", "verdicts", "worst error ÷ allowed", "results"], rows, right=[1, 3]))


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
            "side; torch returns one value there. These are the values it chose.", "",
            "<details>", f"<summary>the kinks found ({len(list(dict.fromkeys(rows)))})</summary>", ""] + table + [
            "</details>", ""]


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


def _case(case: CaseReport, base: Path | None, plots: dict[str, list[tuple[str, str]]],
          collapsed: bool, up: str = "") -> list[str]:
    worst = _worst_ratio(case.results)
    body: list[str] = []
    if case.description:
        body += [_text(case.description).strip(), ""]
    facts = [f"- File: {_link(case, base)}", f"- Verdict: {_VERDICT.get(case.status, _text(case.status))}"
             + (f", worst error ÷ allowed {_ratio(worst)}" if worst is not None else "")]
    if case.xfail:
        facts.append(f"- Expected to fail: {_text(case.xfail)}")
    if case.expr:
        facts.append(f"- Expression: {_code(case.expr)}")
    body += facts + [""]
    if case.expr_latex:
        body += ["Mathematically:", ""] + _math(case.expr_latex) + [""]
    formulas = [(label, latex) for label, latex in case.derivatives_latex if latex]
    if formulas:
        body += ["Exact derivatives:", ""]
        for label, latex in formulas:
            math = _math(latex)
            if len(math) == 1:
                body.append(f"- {_text(label)}: {math[0]}")
            else:
                body += [f"- {_text(label)}:", ""] + ["  " + m for m in math] + [""]
        body.append("")
    body += _results(case.results)
    body += _claims(case.results)
    for result in case.results:
        body += _result(result)
    body += _case_findings(case.results)
    for alt, name in plots.get(case.name, []):
        body += [f"![{_text(alt)}]({up}{PLOTS_DIR}/{name})", ""]
    anchor = f'<a id="{_anchor(case)}"></a>'
    if not collapsed:
        return [anchor, "", f"### {_text(case.name)}", ""] + body
    summary = (f"<summary><b>{_html(case.name)}</b> · {_html(case.status)}"
               + (f" · worst error ÷ allowed {_html(format_number(worst, 3))}" if worst is not None else "")
               + f" · {len(case.results)} results</summary>")
    return [anchor, "<details>", summary, ""] + body + ["</details>", ""]


def _html(value: Any) -> str:
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _results(results: list[Result]) -> list[str]:
    compared = [r for r in results if not r.check.startswith("expect.")]
    if not compared:
        return []
    rows = [[_text(r.check), format_cell(r.mode), format_cell(r.dtype), str(r.points),
             _ratio(r.ratio), format_number(r.max_ulp_error, 3),
             ", ".join(f"{n} {_text(c)}" for c, n in extra_counts(r).items()) or MISSING,
             _status(r.status, r.failed)]
            for r in compared]
    header = ["check", "mode", "dtype", "points", "error ÷ allowed", "max ULP", "other points", "status"]
    return _table(header, rows, right=[3, 4, 5])


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
    details = r.details
    if details.trajectory:
        body += ["Gradient-descent steps:", ""] + _trajectory(details.trajectory)
    if not body:
        return []
    return [f"#### {_text(result_label(r))} — {_status(r.status, r.failed)}", ""] + body


def _case_findings(results: list[Result]) -> list[str]:
    """The kinks, singular points and unstable regions of a case's results, each once."""
    body: list[str] = []
    kinks = _kinks(_kink_row(k) for r in results for k in r.details.kinks)
    if kinks:
        body += ["Kinks (torch's value against the one-sided limits):", ""] + kinks
    singular = _singular(p for r in results for p in r.details.singular)
    if singular:
        body += ["Singular points:", ""] + singular
    regions = list(dict.fromkeys(f"{region} ({result_label(r)})" for r in results for region in r.details.regions))
    if regions:
        body += ["Unstable regions:", ""] + [f"- {_text(region)}" for region in regions] + [""]
    return body


def _failure(r: Result) -> list[str]:
    lines = [_text(r.message), ""] if r.message else []
    facts = []
    if r.ratio is not None:
        facts.append(f"- Worst error ÷ allowed: {_ratio(r.ratio)}")
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
    rows = list(dict.fromkeys((_code(format_point(p.point)), _code(p.entry), _value(p.exact),
                               _number(p.torch), _holds(p.matches_limit)) for p in points))
    return _table(["point", "entry", "exact", "torch", "matches limit"], rows) if rows else []


# --- public -------------------------------------------------------------------------------

def _cases(cases: Sequence[CaseReport], base: Path | None, plots: dict[str, Any], up: str = "") -> list[str]:
    """The failing cases expanded, then the others collapsed."""
    ordered = _ordered(cases)
    failing = [c for c in ordered if c.status == FAIL]
    others = [c for c in ordered if c.status != FAIL]
    case_plots = {k: v for k, v in plots.items() if k}
    lines: list[str] = []
    if failing:
        lines += ["## Failing cases", ""]
        for case in failing:
            lines += _case(case, base, case_plots, collapsed=False, up=up)
    if others:
        lines += ["## Passing cases", "",
                  "Each case is collapsed: click its name to see its formulas, results and plots.", ""]
        for case in others:
            lines += _case(case, base, case_plots, collapsed=True, up=up)
    return lines


def _finish(lines: list[str]) -> str:
    while lines and lines[-1] == "":
        lines.pop()
    return "\n".join(lines) + "\n"


def render_markdown(report: RunReport, generated: str, directory: str | Path | None = None,
                    plots: dict[str, Any] | None = None) -> str:
    """The Markdown text of ``report`` as one page; ``generated`` fills the ``Generated:``
    line. ``directory`` is where the report goes (links to case files are relative to it);
    ``plots`` maps a case name to its ``(alt text, file name)`` plots, and ``""`` to a
    one-line note when they could not be drawn."""
    base = Path(directory) if directory is not None else None
    plots = plots or {}
    lines = _header(report, generated) + _counts(report) + _plots_note(plots)
    if report.cases:
        lines += ["## Overview", ""] + _overview(report.cases, base)
    lines += _errors(report)
    lines += _conventions(report)
    lines += _cases(report.cases, base, plots)
    return _finish(lines)


def _plots_note(plots: dict[str, Any]) -> list[str]:
    return [plots[""], ""] if isinstance(plots.get(""), str) else []  # our own sentence, with its Markdown


def _page_names(files: Iterable[str]) -> dict[str, str]:
    """A page name (``activations.md``, ``library-linalg.md``) for each case file: its path
    from the folder the files share, ``/`` as ``-``; unique."""
    files = list(dict.fromkeys(files))
    stems = [os.path.splitext(f)[0].replace("\\", "/") for f in files]
    common = os.path.commonpath([os.path.dirname(s) or "." for s in stems]) if len(stems) > 1 else ""
    out: dict[str, str] = {}
    taken: set[str] = set()
    for file, stem in zip(files, stems):
        rel = stem[len(common):].lstrip("/") if common and stem.startswith(common) else stem
        name = re.sub(r"[^A-Za-z0-9_.-]+", "-", rel).strip("-.") or "cases"
        candidate, n = name, 1
        while candidate.lower() in taken or candidate.lower() == "index":
            n += 1
            candidate = f"{name}-{n}"
        taken.add(candidate.lower())
        out[file] = f"{PAGES_DIR}/{candidate}.md"
    return out


def render_pages(report: RunReport, generated: str, directory: str | Path | None = None,
                 plots: dict[str, Any] | None = None) -> dict[str, str]:
    """The pages of the report, ``{path relative to directory: Markdown}``. A run of at most
    :data:`PAGE_CASES` cases, or of one case file, is one page, ``index.md``
    (:func:`render_markdown`). A bigger one gets a page per case file, ``files/NAME.md``
    (an overview of its cases, failing ones expanded, passing ones collapsed), and
    ``index.md`` holds the header, an overview by file, the cases that did not plainly
    pass, every case-file error and the failing cases expanded."""
    files = list(dict.fromkeys(c.file for c in report.cases))
    if len(report.cases) <= PAGE_CASES or len(files) < 2:
        return {"index.md": render_markdown(report, generated, directory, plots)}
    base = Path(directory) if directory is not None else None
    sub = base / PAGES_DIR if base is not None else Path(PAGES_DIR)
    plots = plots or {}
    pages = _page_names(files)
    groups = [(f, pages[f], [c for c in report.cases if c.file == f]) for f in files]
    lines = _header(report, generated) + _counts(report) + _plots_note(plots)
    lines += ["## Overview", ""] + _file_overview(groups)
    notable = [c for c in report.cases if c.status != PASS]
    if notable:
        lines += ["### Cases that did not plainly pass", ""]
        lines += _overview(notable, base, lambda case: pages[case.file])
    lines += _errors(report)
    lines += _conventions(report)
    failing = [c for c in report.cases if c.status == FAIL]
    if failing:
        lines += _cases(failing, base, plots)
    out = {"index.md": _finish(lines)}
    for file, page, cases in groups:
        # nothing of the other files here: a page changes only with its own file's results
        body = [f"# {_text(file)}", "", f"Part of the [diffcheck report](../index.md). Results of this file: "
                f"{_tally(r for c in cases for r in c.results)}.", "",
                "## Overview", ""] + _overview(cases, sub) + _cases(cases, sub, plots, up="../")
        out[page] = _finish(body)
    return out


def draw_plots(report: RunReport, directory: str | Path, draw: bool = True) -> dict[str, Any]:
    """The plots of ``report``'s cases, drawn into ``directory/plots/`` (the PNG files of an
    earlier report there are removed first): ``{case name: [(alt text, file name)]}``, or
    ``{"": note}`` without matplotlib. ``draw=False``: only the names."""
    from .plots import MISSING_MESSAGE, case_plots, plots_available
    folder = Path(directory) / PLOTS_DIR
    if not plots_available():
        return {"": MISSING_MESSAGE}
    if draw and folder.is_dir():
        for old in folder.glob("*.png"):
            old.unlink()
    out: dict[str, Any] = {}
    for case, drawn in zip(report.cases, _each_case(report.cases, folder, draw)):
        if drawn:
            out[case.name] = drawn
    return out


def _each_case(cases: list[CaseReport], folder: Path, draw: bool) -> list:
    """``case_plots`` of every case: in forked worker processes, one per CPU, when there is
    much to draw (a figure takes a few tenths of a second); the files are the same."""
    from .plots import case_plots
    import multiprocessing
    jobs = min(os.cpu_count() or 1, 8)
    if not draw or jobs < 2 or len(cases) < 8 or "fork" not in multiprocessing.get_all_start_methods():
        return [case_plots(case, folder, case.name, draw) for case in cases]
    from concurrent.futures import ProcessPoolExecutor
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("fork")) as pool:
        return list(pool.map(_draw_one, [(case, folder) for case in cases], chunksize=4))


def _draw_one(job: tuple) -> list:
    from .plots import case_plots
    case, folder = job
    return case_plots(case, folder, case.name, True)


def write_markdown(report: RunReport, directory: str | Path,
                   now: datetime | None = None, plots: bool = True) -> Path:
    """Write ``directory/index.md`` (creating the folder), the pages of a big report in
    ``directory/files/`` (:func:`render_pages`; the pages of an earlier report there are
    removed first) and, with ``plots`` and matplotlib, the plots in ``directory/plots/``;
    return the path of ``index.md``.

    ``now`` (default: the current time) and the run's duration go on the ``Generated:``
    line, the only line that differs between two reports of the same results.
    """
    now = now or datetime.now(timezone.utc)
    stamp = now.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    directory = Path(directory)
    path = directory / "index.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    drawn = draw_plots(report, directory) if plots else {}
    pages = render_pages(report, f"{stamp} (the run took {report.seconds:.2f} s)", directory, drawn)
    old_pages = directory / PAGES_DIR
    if old_pages.is_dir():  # the pages of an earlier report (a file may be gone since)
        for old in old_pages.glob("*.md"):
            old.unlink()
    for name, text in pages.items():
        # a temporary file renamed over it: a symlinked page is replaced, not followed
        write_text(directory / name, text)
    return path
