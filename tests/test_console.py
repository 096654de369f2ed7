"""The console report at 80 columns: exact failure blocks, case-file error lines, verdict lines,
and text from case files that cannot reach the terminal as escapes."""

from __future__ import annotations

import io

from rich.console import Console

from diffcheck.errors import CaseFileError, Location
from diffcheck.report.console import failure_block, render_console
from diffcheck.results import CaseReport, ClaimRow, Details, Result, RunReport, WorstPoint


def _console(width: int = 80) -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=width, color_system=None, highlight=False), out


def _fail(mode: str = "reverse") -> Result:
    return Result(
        case="softplus_threshold", file="cases/findings.yaml", check="gradient", mode=mode, dtype="float64",
        status="fail", points=8, max_abs_error=1.0685e-09, max_rel_error=1.0685e-09, max_ulp_error=9.6e6,
        worst_point=WorstPoint(point={"x": 20.657}, entry="∂y / ∂x", reference=0.99999999893150271,
                               autograd=1.0, abs_error=1.0685e-09, rel_error=1.0685e-09, ulp_error=9624170.0,
                               formula="exp(x)/(1 + exp(x))"),
        message="8 of 8 points beyond tolerance", counts={"fail": 8},
        tolerance={"rtol": 4.440892098500626e-16, "atol": 1.7763568394002505e-15, "rule": "default"},
        ratio=481000.0)


def test_the_failure_block_exactly():
    console, out = _console()
    failure_block(console, [_fail("reverse"), _fail("forward")], "cases/findings.yaml:4")
    assert out.getvalue() == """\
___________________________ FAIL softplus_threshold ____________________________
cases/findings.yaml:4
FAIL gradient · reverse · float64: error 4.81e+05 × allowed
  what         8 of 8 points beyond tolerance
  worst point  x=20.657
  entry        ∂y / ∂x
  exact        0.99999999893150271
  torch        1
  error        4.81e+05 × allowed (abs 1.0685e-09, rel 1.0685e-09)
  ULP          9.62417e+06 at the same point
  allowed      rtol 4.44e-16 · |exact| + atol 1.78e-15 (default tolerance)
  formula      exp(x)/(1 + exp(x))
FAIL gradient · forward · float64: error 4.81e+05 × allowed
  same         worst point, values and error as gradient · reverse · float64

"""


def test_a_claim_failure_block_wraps_under_its_label_at_80_columns():
    row = ClaimRow(label="∂f/∂w", at={"w": 3}, claimed=72, exact="24", torch=24.0, holds=False)
    r = Result("w_times_2_sq", "cases/chains.yaml", "expect.values", None, None, "fail",
               message="claims ∂f/∂w = 72 at w=3; exact 24, torch (float64) 24.0; " * 2,
               details=Details(claim=(row,)))
    console, out = _console()
    failure_block(console, [r], "cases/chains.yaml:159")
    lines = out.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert lines[2] == "FAIL expect.values"
    assert lines[3].startswith("  what         claims ∂f/∂w = 72 at w=3;")
    assert lines[4].startswith(" " * 15) and lines[4].strip()
    assert lines[-2] == "  claim        ∂f/∂w at w=3: claimed 72, exact 24, torch 24 (false)"


def test_a_case_file_error_line_exactly():
    error = CaseFileError("in `expr` of case 'bad': unknown function 'foo'", Location("cases/bad.yaml", 4, 11),
                          hint="did you mean 'exp'?")
    console, out = _console()
    render_console(RunReport(errors=[error]), console)
    assert out.getvalue() == (
        "ERROR cases/bad.yaml:4:11: in `expr` of case 'bad': unknown function 'foo' (did you mean 'exp'?)\n"
        "0 passed, 0 failed, 1 error · 0 cases in 0.00s\n")


def _case(name: str, status: str, xfail: str | None = None, line: int = 1) -> CaseReport:
    r = Result(name, "cases/a.yaml", "gradient", "reverse", "float64", status, points=4,
               tolerance={"rtol": 1e-15, "atol": 0.0}, ratio=0.25)
    if status == "xfail":
        r = Result(name, "cases/a.yaml", "gradient", "reverse", "float64", "xfail", original_status="fail")
    return CaseReport(name, "cases/a.yaml", results=[r], xfail=xfail, line=line)


def test_a_green_run_is_one_line_per_file_and_xfail_lines_say_xfail():
    cases = [_case("one", "pass"), _case("two", "xfail", "torch gives NaN at 0 " * 10, line=9),
             _case("three", "kink")]
    report = RunReport(results=[r for c in cases for r in c.results], cases=cases, seconds=2.0)
    console, out = _console()
    render_console(report, console)
    assert out.getvalue().splitlines() == [
        "pass  cases/a.yaml  3 cases .x.",
        "  xfail two  cases/a.yaml:9  torch gives NaN at 0 torch gives NaN at 0 torch gi…",
        "1 passed, 0 failed, 1 xfail, 1 kink · 3 cases: 2 passed, 1 xfail in 2.00s",
    ]


def test_text_from_case_files_cannot_reach_the_terminal_as_escapes():
    evil = "bad\x1b[2J\x1b]0;pwned\x07name\nsecond line\u202e"
    r = Result(evil, "cases/\x1b[31mx.yaml", "gradient", "reverse", "float64", "fail", message=evil)
    case = CaseReport(evil, "cases/\x1b[31mx.yaml", results=[r], xfail=evil)
    report = RunReport(results=[r], cases=[case],
                       errors=[CaseFileError(evil, Location("cases/\x1b[31mx.yaml", 1, 1))])
    for verbosity in (-1, 0, 1, 2):
        console, out = _console()
        render_console(report, console, verbosity)
        text = out.getvalue()
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
        assert "badname" in text
