"""What CI servers read: JUnit XML, GitHub workflow annotations and a GitHub step summary.

* :func:`junit_xml`: one ``<testsuite>`` per case file, one ``<testcase>`` per case
  (``classname`` the file, ``name`` the case). A failing case carries a ``<failure>`` whose
  text is the console's failure block; a case stopped by a limit or whose torch raised an
  ``<error>``; an xfail case ``<skipped>`` with its reason (as pytest writes them); every
  case's results, one line each, in ``<system-out>``. A case-file error is a testcase of
  its file with an ``<error>``. Built with ``junitparser``.
* :func:`github_annotations`: ``::error file=…,line=…,title=…::message`` for each failing case
  (on the case's first line) and each case-file error (on its line and column).
* :func:`step_summary`: a short Markdown summary for ``$GITHUB_STEP_SUMMARY``.

Text from case files goes through :func:`diffcheck.report.plain_text` first: XML 1.0 has no
control characters, and an annotation must stay one line.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from typing import Any

from ..results import ERROR, XFAIL, XPASS, CaseReport, RunReport
from . import format_number, plain_text, result_label
from .console import case_mark, failure_facts, failure_text, run_summary

__all__ = ["junit_xml", "github_annotations", "step_summary"]


def _classname(file: str) -> str:
    """``cases/activations.yaml`` → ``cases.activations`` (how CI servers group tests)."""
    stem = re.sub(r"\.ya?ml$", "", file.replace("\\", "/"))
    return ".".join(part for part in stem.split("/") if part and part != ".") or file


def _result_lines(case: CaseReport) -> str:
    lines = []
    for r in case.results:
        ratio = f"  error {format_number(r.ratio, 3)} × allowed" if r.compared and r.ratio is not None else ""
        lines.append(f"{result_label(r)}: {r.status}{ratio}")
    return plain_text("\n".join(lines))


def junit_xml(report: RunReport) -> str:
    """The JUnit XML text of ``report``."""
    from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

    suites: dict[str, TestSuite] = {}

    def suite(file: str) -> TestSuite:
        if file not in suites:
            suites[file] = TestSuite(plain_text(file, one_line=True))
        return suites[file]

    for case in report.cases:
        tc = TestCase(plain_text(case.name, one_line=True), _classname(plain_text(case.file, one_line=True)),
                      round(case.seconds, 3))  # 3 places: never written as 1e-05, which xs:decimal refuses
        mark = case_mark(case)
        failing = [r for r in case.results if r.failed]
        if mark in ("F", "X", "E"):
            first = failing[0]
            headline = plain_text(f"{result_label(first)}: {first.message or first.status}", one_line=True)
            kind = Error if mark == "E" else Failure
            outcome = kind(headline[:1000], str(ERROR if mark == "E" else (XPASS if mark == "X" else first.status)))
            outcome.text = plain_text(failure_text(case, width=100))
            tc.result = [outcome]
        elif mark == "x":
            reason = case.xfail or next((r.message for r in case.results if r.status == XFAIL), "") or ""
            tc.result = [Skipped(plain_text(f"xfail: {reason}", one_line=True)[:1000], "xfail")]
        tc.system_out = _result_lines(case)
        suite(case.file).add_testcase(tc)
    for error in report.errors:
        where = error.location
        file = where.file if where is not None else "case files"
        tc = TestCase(plain_text(str(where) if where is not None else "invalid case file", one_line=True),
                      _classname(plain_text(file, one_line=True)), 0.0)
        outcome = Error(plain_text(error.message, one_line=True)[:1000], "invalid case file")
        outcome.text = plain_text(str(error))
        tc.result = [outcome]
        suite(file).add_testcase(tc)
    for i, text in enumerate(report.internal_errors):
        tc = TestCase(f"internal error {i + 1}", "diffcheck", 0.0)
        outcome = Error("internal error of diffcheck", "internal")
        outcome.text = plain_text(text)
        tc.result = [outcome]
        suite("diffcheck").add_testcase(tc)

    xml = JUnitXml("diffcheck")
    for s in suites.values():
        s.update_statistics()
        xml.add_testsuite(s)
    xml.update_statistics()
    ET.indent(xml._elem)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(xml._elem, encoding="unicode") + "\n"


# --- GitHub ---------------------------------------------------------------------------------

def _data(text: str) -> str:
    """An annotation's message: %, CR and LF escaped as GitHub's workflow commands read them."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: Any) -> str:
    return _data(plain_text(str(text), one_line=True)).replace(":", "%3A").replace(",", "%2C")


def github_annotations(report: RunReport) -> str:
    """One ``::error`` workflow command per failing case and per case-file error."""
    lines = []
    for error in report.errors:
        where = error.location
        props = [f"file={_property(where.file)}"] if where is not None else []
        if where is not None and where.line > 0:
            props += [f"line={where.line}", f"col={max(where.column, 1)}"]
        props.append("title=invalid case file")
        lines.append(f"::error {','.join(props)}::{_data(plain_text(error.message + (f' ({error.hint})' if error.hint else '')))}")
    for case in report.cases:
        failing = [r for r in case.results if r.failed]
        if not failing:
            continue
        first = failing[0]
        props = [f"file={_property(case.file)}"]
        if case.line:
            props.append(f"line={case.line}")
        title = f"diffcheck {first.status.upper()} {case.name}: {result_label(first)}"
        if first.ratio is not None and first.compared:
            title += f" (error {format_number(first.ratio, 3)} × allowed)"
        props.append(f"title={_property(title)}")
        body = "\n".join(f"{label}: {value}" for label, value in failure_facts(first))
        if len(failing) > 1:
            body += f"\n… and {len(failing) - 1} more failing result(s) of this case"
        lines.append(f"::error {','.join(props)}::{_data(plain_text(body))}")
    for text in report.internal_errors:
        lines.append(f"::error title=diffcheck internal error::{_data(plain_text(text))}")
    return "".join(line + "\n" for line in lines)


def _md(text: Any) -> str:
    text = plain_text(text, one_line=True)
    return re.sub(r"([\\`*_\[\]<>$~#!&|])", r"\\\1", text)


def step_summary(report: RunReport) -> str:
    """A short Markdown summary of ``report`` (verdict, versions, failing cases, errors)."""
    ok = report.exit_code == 0
    lines = [f"### diffcheck: {'passed' if ok else 'failed'} {'✅' if ok else '❌'}", "",
             _md(run_summary(report)), ""]
    if report.versions:
        lines += [" · ".join(f"{_md(k)} {_md(v)}" for k, v in report.versions.items()), ""]
    failing = [c for c in report.cases if case_mark(c) in ("F", "X", "E")]
    if failing:
        lines += ["| case | where | result | status | error ÷ allowed |", "| --- | --- | --- | --- | ---: |"]
        for case in failing:
            for r in case.results:
                if r.failed:
                    ratio = format_number(r.ratio, 3) if r.compared and r.ratio is not None else "—"
                    lines.append(f"| {_md(case.name)} | `{_md(case.where)}` | {_md(result_label(r))} | "
                                 f"{r.status} | {ratio} |")
        lines.append("")
    if report.errors:
        lines += ["Invalid case files:", ""] + [f"- {_md(str(e))}" for e in report.errors] + [""]
    if report.internal_errors:
        lines += [f"{len(report.internal_errors)} internal error(s) of diffcheck: see the log.", ""]
    if report.baseline is not None:
        lines += [_md(report.baseline.headline()), ""]
    return "\n".join(lines) + "\n"


def github_step_summary_path() -> str | None:
    """``$GITHUB_STEP_SUMMARY`` when GitHub Actions set it."""
    return os.environ.get("GITHUB_STEP_SUMMARY") or None

