"""The writers render a hand-built RunReport: console, Markdown and JSON."""

from __future__ import annotations

import io
import json
import math
import re
from datetime import datetime, timezone

import pytest
from rich.console import Console

from diffcheck.errors import CaseFileError, Location
from diffcheck.report import format_exact, summary_line
from diffcheck.report.console import render_console
from diffcheck.report.jsonout import dumps, write_json
from diffcheck.report.markdown import GENERATED_PREFIX, render_markdown, write_markdown
from diffcheck.results import (
    CaseReport, ClaimRow, DescentStep, Details, KinkFinding, Result, RunReport, SingularPoint, WorstPoint,
)

LONG_LATEX = (r"\frac{e^{x}}{\left(e^{x} + 1\right)^{2}}"
              r" + \frac{e^{2 x}}{\left(e^{x} + 1\right)^{3}} + x^{2} \sin{\left(x \right)}")
KINK = KinkFinding(function="abs", check="gradient", point={"x": 0.0}, entry="d y / d x", left=-1.0,
                   right=1.0, torch=0.0, convention="sign(0) = 0, inside [-1, 1]")


def make_report() -> RunReport:
    """One case of each kind the writers must handle."""
    sigmoid = CaseReport(
        name="sigmoid", file="cases/act.yaml", description="The logistic *sigmoid*.", line=12,
        expr="sigmoid(x)", expr_latex=r"\frac{1}{1 + e^{- x}}",
        derivatives_latex=[("d/dx", r"\frac{e^{- x}}{\left(1 + e^{- x}\right)^{2}}"),
                           ("d²/dx²", LONG_LATEX)],
        results=[
            Result("sigmoid", "cases/act.yaml", "gradient", "reverse", "float64", "pass",
                   points=32, max_abs_error=1e-17, max_rel_error=2e-16, max_ulp_error=1.0),
            Result("sigmoid", "cases/act.yaml", "gradient", "forward", "float32", "fail",
                   points=32, max_abs_error=2.5e-3, max_rel_error=0.25, max_ulp_error=4.2e6,
                   message="torch's gradient is off by 25% at x=-20",
                   worst_point=WorstPoint(
                       point={"x": -20.0}, entry="d y[0] / d x[1]",
                       reference=2.0611536181902037e-09, autograd=1.5e-09,
                       abs_error=5.6e-10, rel_error=0.27, ulp_error=4.2e6,
                       formula="exp(-x)/(1 + exp(-x))**2"),
                   tolerance={"rtol": 1.3e-6, "atol": 1e-5}, ratio=43.1),
        ])
    absval = CaseReport(
        name="abs_kink", file="cases/abs.yaml", expr="abs(x)",
        expr_latex=r"\left|x\right|",
        derivatives_latex=[("d/dx", r"\operatorname{sign}{\left(x \right)}")],
        results=[
            Result("abs_kink", "cases/abs.yaml", "gradient", mode, "float64", "kink", points=33,
                   max_abs_error=0.0, max_rel_error=0.0, max_ulp_error=0.0,
                   counts={"pass": 32, "kink": 1}, details=Details(kinks=(KINK,)))
            for mode in ("reverse", "forward")
        ] + [
            Result("abs_kink", "cases/abs.yaml", "expect.values", None, None, "fail",
                   message="the note claims 72 where the exact value is 24",
                   details=Details(claim=(ClaimRow(label="gradient of |x|", at={"x": 3},
                                                   claimed={"x": 72}, exact={"x": 24},
                                                   torch={"x": 24.0}, holds=False),))),
            Result("abs_kink", "cases/abs.yaml", "expect.descent", None, None, "pass",
                   details=Details(trajectory=(
                       DescentStep(step=1, claimed={"w": 28}, exact={"w": 28},
                                   torch={"w": 28.0}, holds=True),
                       DescentStep(step=2, claimed={"w": -336}, exact={"w": -336},
                                   torch={"w": -336.0}, holds=True)))),
        ])
    logcase = CaseReport(
        name="log_singular", file="cases/log.yaml", expr="log(x)",
        expr_latex=r"\log{\left(x \right)}",
        xfail="torch gives -inf at 0",
        results=[
            Result("log_singular", "cases/log.yaml", "gradient", "reverse", "float64",
                   "singular", points=31, max_abs_error=float("nan"),
                   max_rel_error=float("inf"), max_ulp_error=None,
                   counts={"pass": 31, "singular": 1},
                   details=Details(singular=(SingularPoint(
                       point={"x": 0.0}, entry="d y / d x", exact="inf", left=float("inf"),
                       right=float("inf"), limit="+inf", torch=float("inf"), matches_limit=True),),
                       regions=("NaN for x < 0 in float64",))),
            Result("log_singular", "cases/log.yaml", "gradient", "reverse", "float32", "xfail",
                   points=32),
        ])
    cases = [sigmoid, absval, logcase]
    return RunReport(
        results=[r for c in cases for r in c.results], cases=cases,
        errors=[CaseFileError("unknown function 'foo'", Location("cases/bad.yaml", 3, 7),
                              hint="did you mean 'exp'?")],
        seed=7, seconds=1.5,
        versions={"python": "3.12.1", "sympy": "1.14.0", "torch": "2.13.0",
                  "diffcheck": "0.1.0", "numpy": "2.0"})


def _row(text: str, *cells: str) -> bool:
    """Whether a table row holds exactly ``cells``, whatever the column separators."""
    return any(re.split(r"[\s│]+", line.strip()) == list(cells) for line in text.splitlines())


def console_text(report: RunReport, verbosity: int = 0) -> str:
    out = io.StringIO()
    render_console(report, Console(file=out, width=200), verbosity)
    return out.getvalue()


# --- console ------------------------------------------------------------------------------

def test_console_table_at_v_has_the_deciding_ratio_and_every_result():
    text = console_text(make_report(), verbosity=1)
    header = next(line for line in text.splitlines() if "case" in line and "status" in line)
    for column in ("case", "check", "mode", "dtype", "pts", "err÷allowed", "status"):
        assert column in header
    assert _row(text, "sigmoid", "gradient", "forward", "float32", "32", "43.1", "fail")
    assert _row(text, "abs_kink", "expect.values", "—", "—", "0", "—", "fail")


def test_console_details_every_failure():
    text = console_text(make_report())
    assert "FAIL gradient · forward · float32: error 43.1 × allowed" in text
    assert "torch's gradient is off by 25% at x=-20" in text
    assert "entry        d y[0] / d x[1]" in text  # brackets are not read as rich markup
    assert "cases/act.yaml:12" in text
    assert "FAIL expect.values" in text


def test_console_lists_case_file_errors_and_ends_with_the_summary_line():
    lines = console_text(make_report()).rstrip().splitlines()
    assert "ERROR cases/bad.yaml:3:7: unknown function 'foo' (did you mean 'exp'?)" in lines
    assert lines[-1] == ("2 passed, 2 failed, 1 xfail, 2 kink, 1 singular, 1 error · "
                         "3 cases: 2 failed, 1 xfail in 1.50s")


def test_case_file_errors_can_go_to_their_own_console():
    out, err = io.StringIO(), io.StringIO()
    render_console(make_report(), Console(file=out, width=200), 0,
                   errors_console=Console(file=err, width=200))
    assert "cases/bad.yaml:3:7" in err.getvalue()
    assert "cases/bad.yaml:3:7" not in out.getvalue()


def test_quiet_console_shows_only_failures_and_the_summary():
    text = console_text(make_report(), verbosity=-1)
    assert "sigmoid" in text and "float32" in text
    assert not _row(text, "sigmoid", "gradient", "reverse", "float64", "32", "—", "pass")
    assert "cases/log.yaml" not in text
    assert text.rstrip().splitlines()[-1].startswith("2 passed, 2 failed")


def test_summary_line_always_names_passed_and_failed():
    assert summary_line(RunReport(seconds=0.25)) == "0 passed, 0 failed in 0.25s"
    report = RunReport(results=[Result("a", "f", "gradient", "reverse", "float64", "error")],
                       internal_errors=["boom"])
    assert summary_line(report, with_time=False) == "0 passed, 0 failed, 2 errors"


def test_exact_values_keep_17_significant_digits():
    assert float(format_exact(0.1 + 0.2)) == 0.1 + 0.2
    assert format_exact(float("-inf")) == "-inf"


# --- Markdown -----------------------------------------------------------------------------

def _cells(row: str) -> list[str]:
    """The cells of a table row, splitting only on unescaped pipes."""
    return re.split(r"(?<!\\)\|", row.strip())[1:-1]


@pytest.fixture
def markdown() -> str:
    return render_markdown(make_report(), "2024-01-01 00:00:00 UTC")


def test_markdown_is_deterministic_except_the_generated_line(tmp_path):
    first = write_markdown(make_report(), tmp_path / "a",
                           now=datetime(2024, 1, 1, tzinfo=timezone.utc)).read_text("utf-8")
    second = write_markdown(make_report(), tmp_path / "b").read_text("utf-8")
    assert first != second
    differing = [(a, b) for a, b in zip(first.splitlines(), second.splitlines()) if a != b]
    assert len(first.splitlines()) == len(second.splitlines())
    assert len(differing) == 1
    assert all(line.startswith(GENERATED_PREFIX) for line in differing[0])
    assert (tmp_path / "a" / "index.md").is_file()


def test_markdown_header_has_versions_seed_and_counts(markdown):
    assert markdown.startswith("# diffcheck report\n")
    assert ("diffcheck `0.1.0` · torch `2.13.0` · sympy `1.14.0` · python `3.12.1` · "
            "numpy `2.0` · seed `7`") in markdown
    assert "Results by status: 2 pass, 2 fail," in markdown
    assert "1 case-file errors" in markdown


def test_markdown_opens_with_an_overview_of_cases_failing_first(markdown):
    overview = markdown.split("## Overview", 1)[1].split("\n## ", 1)[0]
    assert "| case | verdict | worst error ÷ allowed | results | file |" in overview
    rows = [line for line in overview.splitlines() if line.startswith("| [")]
    assert [re.match(r"\| \[([^\]]+)\]", row).group(1) for row in rows] == \
        ["sigmoid", "abs\\_kink", "log\\_singular"]  # failing cases first, then run order
    assert rows[0].startswith("| [sigmoid](#case-sigmoid) | **fail** |")
    assert markdown.index("## Overview") < markdown.index("## Failing cases")


def test_markdown_collapses_passing_cases_and_expands_failures(markdown):
    failing = markdown.split("## Failing cases", 1)[1].split("## Passing cases", 1)[0]
    assert "### sigmoid" in failing and "<details>" not in failing.split("### sigmoid", 1)[1].split("###", 1)[0]
    passing = markdown.split("## Passing cases", 1)[1]
    assert '<a id="case-log_singular"></a>\n<details>\n<summary><b>log_singular</b> · xfail' in passing
    assert passing.count("<details>") == passing.count("</details>")


def test_markdown_links_cases_to_file_and_line():
    report = make_report()
    report.cases[0].line = 12
    text = render_markdown(report, "now", directory="reports")
    assert "[`cases/act.yaml:12`](../cases/act.yaml#L12)" in text


def test_markdown_result_tables_hold_every_compared_result(markdown):
    header = "| check | mode | dtype | points | error ÷ allowed | max ULP | other points | status |"
    assert markdown.count(header) == 3
    assert "| gradient | forward | float32 | 32 | `43.1` | 4.2e+06 | — | **fail** |" in markdown
    assert "| gradient | reverse | float64 | 31 | — | — | 1 singular | singular |" in markdown


def test_markdown_shows_each_case_with_its_math(markdown):
    assert "### sigmoid" in markdown
    assert r"The logistic \*sigmoid\*." in markdown
    assert "- Expression: `sigmoid(x)`" in markdown
    assert r"$\frac{1}{1 + e^{- x}}$" in markdown
    assert r"$\left|x\right|$" in markdown  # no escaping inside math
    assert r"- d/dx: $\frac{e^{- x}}{\left(1 + e^{- x}\right)^{2}}$" in markdown
    assert f"  $$\n  {LONG_LATEX}\n  $$" in markdown  # long formulas get a display block
    assert "- Expected to fail: torch gives -inf at 0" in markdown


def test_markdown_details_failures(markdown):
    assert "#### gradient · forward · float32 — **fail**" in markdown
    assert "- Worst point: `x=-20`" in markdown
    assert "- Entry: `d y[0] / d x[1]`" in markdown
    assert "- Exact value (reference): `2.0611536181902037e-09`" in markdown
    assert "- Torch's value (autograd): `1.5e-09`" in markdown
    assert "- Errors: abs `5.6e-10`, rel `0.27`, ULP `4.2e+06`" in markdown
    assert "- Exact derivative: `exp(-x)/(1 + exp(-x))**2`" in markdown


def test_markdown_renders_claims_trajectories_singular_points_and_regions(markdown):
    assert "| claim | note's value | exact value | torch's value | holds |" in markdown
    assert r"| gradient of \|x\| at x=3 | `x=72` | `x=24` | `x=24` | ❌ no |" in markdown
    assert "| step | claimed | exact | torch | holds |" in markdown
    assert "| 2 | `w=-336` | `w=-336` | `w=-336` | ✅ yes |" in markdown
    assert "| `x=0` | `d y / d x` | `inf` | `inf` | ✅ yes |" in markdown
    assert "- NaN for x < 0 in float64" not in markdown  # "<" is escaped…
    assert r"- NaN for x \< 0 in float64" in markdown    # …so GitHub shows it as text


def test_markdown_gathers_kinks_into_one_deduplicated_table(markdown):
    section = markdown.split("## Subgradient conventions", 1)[1].split("\n## ", 1)[0]
    assert "| function | point | left limit | right limit | torch | convention |" in section
    rows = [line for line in section.splitlines() if line.startswith("| `abs`")]
    assert rows == ["| `abs` | `x=0` | `-1` | `1` | `0` | sign(0) = 0, inside \\[-1, 1\\] |"]


def test_markdown_lists_case_file_and_internal_errors():
    report = make_report()
    report.internal_errors.append("Traceback (most recent call last):\nRuntimeError: boom")
    text = render_markdown(report, "now")
    assert ("- `cases/bad.yaml:3:7`: unknown function 'foo' *Hint:* did you mean 'exp'?"
            in text)
    assert "## Internal errors" in text
    assert "```text\nTraceback (most recent call last):\nRuntimeError: boom\n```" in text


def test_markdown_of_an_empty_run_says_so():
    assert "No case was found." in render_markdown(RunReport(), "now")


# --- JSON ---------------------------------------------------------------------------------

def _no_bare_constants(name):
    raise AssertionError(f"bare {name} in JSON")


def test_json_round_trips_with_sorted_keys(tmp_path):
    report = make_report()
    path = write_json(report, tmp_path / "out" / "results.json")
    text = path.read_text("utf-8")
    data = json.loads(text, parse_constant=_no_bare_constants)
    assert data == json.loads(json.dumps(report.to_dict()), parse_constant=lambda c: c.lower())
    assert data["version"] == 1
    assert len(data["results"]) == len(report.results)
    assert text == json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    assert dumps(make_report()) == text  # deterministic


def test_json_writes_non_finite_floats_as_strings():
    data = json.loads(dumps(make_report()), parse_constant=_no_bare_constants)
    singular = next(r for r in data["results"] if r["status"] == "singular")
    assert singular["max_abs_error"] == "nan"
    assert singular["max_rel_error"] == "inf"
    assert singular["details"]["singular"][0]["torch"] == "inf"
    result = data["results"][1]
    for key in ("case", "file", "check", "mode", "dtype", "status", "points",
                "max_abs_error", "max_rel_error", "max_ulp_error", "worst_point"):
        assert key in result
    assert math.isclose(result["worst_point"]["reference"], 2.0611536181902037e-09)
    assert data["errors"][0]["line"] == 3


def test_formulas_too_big_to_read_are_not_printed_as_latex():
    from diffcheck.pipeline import derivative_latex, latex_of
    from diffcheck.loader import load_text
    from diffcheck.symbolic import compile_case
    from diffcheck.symbolic.display import MAX_NODES

    cases, _ = load_text("name: big\nvariables: {x: {shape: [300]}}\nexpr: logsumexp(x)\n", "big.yaml")
    compiled = compile_case(cases[0])
    assert latex_of(compiled.output, "logsumexp(x)") == r"\texttt{logsumexp(x)}"
    [(label, latex)] = derivative_latex(compiled)
    assert label == "gradient (1 × 300: rows y, columns x[0] … x[299]; its corners)"
    assert r"\cdots" in latex and "(300 terms)" in latex and len(latex) < 400
    small, _ = load_text("name: small\nvariables: {x: {}}\nexpr: sigmoid(x)\n", "small.yaml")
    assert "frac" in latex_of(compile_case(small[0]).output, "sigmoid(x)")
    huge, _ = load_text("name: huge\nvariables: {x: {}}\nexpr: sin(x)\ncheck: [{derivative: 40}]\n", "h.yaml")
    [(_, latex)] = derivative_latex(compile_case(huge[0]))
    assert f"more than {MAX_NODES} operations" in latex or len(latex) < 200


def test_vector_derivatives_are_one_capped_matrix_with_shared_parts_named():
    from diffcheck.pipeline import derivative_latex
    from diffcheck.loader import load_text
    from diffcheck.symbolic import compile_case

    cases, _ = load_text("name: sm\nvariables: {x: {shape: [8]}}\nexpr: softmax(x)\n", "sm.yaml")
    [(label, latex)] = derivative_latex(compile_case(cases[0]))
    assert label == "jacobian (8 × 8: rows y[0] … y[7], columns x[0] … x[7]; its corners)"
    assert latex.startswith(r"\begin{pmatrix}") and r"\ddots" in latex
    assert r"\text{where } u_{0} = e^{x_{0}} + e^{x_{1}}" in latex  # the sum, named once
    assert len(latex) < 1000
