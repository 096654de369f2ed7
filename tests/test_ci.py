"""CI outputs as a CI server reads them: JUnit XML validated against the schema, GitHub
annotations on the case's line, the step summary, ``-`` for stdout, baselines, shards."""

from __future__ import annotations

import json
import os
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffcheck.baseline import diff_runs
from diffcheck.cli import main
from diffcheck.errors import CaseFileError, Location
from diffcheck.report.ci import github_annotations, junit_xml, step_summary
from diffcheck.report.jsonout import write_json
from diffcheck.report.markdown import GENERATED_PREFIX, write_markdown
from diffcheck.results import CaseReport, Result, RunReport, WorstPoint

SCHEMA = Path(__file__).parent / "data" / "junit" / "junit.xsd"

SUITE = {
    "a.yaml": """\
        cases:
          - name: sine
            variables: {x: {domain: [-2, 2]}}
            expr: sin(x)
            samples: 4
          - name: square_claim
            variables: {w: {domain: [-2, 2]}}
            expr: (2*w)**2
            samples: 4
            expect:
              values:
                - at: {w: 3}
                  gradient: {w: 72}
        """,
    "b.yaml": """\
        cases:
          - name: cube
            variables: {x: {domain: [-2, 2]}}
            expr: x**3
            samples: 4
          - name: known_bad_claim
            variables: {w: {domain: [-2, 2]}}
            expr: w**2
            samples: 4
            xfail: "the note says 3"
            expect:
              values:
                - at: {w: 1}
                  gradient: {w: 3}
          - name: tanh
            variables: {x: {domain: [-2, 2]}}
            expr: tanh(x)
            samples: 4
        """,
    "c.yaml": """\
        cases:
          - name: broken
            variables: {x: {domain: [-2, 2]}}
            expr: foo(x)
        """,
}


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    folder = tmp_path / "cases"
    folder.mkdir()
    for name, text in SUITE.items():
        (folder / name).write_text(textwrap.dedent(text))
    return folder


def run(*args: str, env: dict | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def _schema():
    xmlschema = pytest.importorskip("xmlschema")
    return xmlschema.XMLSchema(str(SCHEMA))


# --- JUnit ----------------------------------------------------------------------------------

def test_junit_xml_validates_and_has_one_testcase_per_case(suite, tmp_path):
    out = tmp_path / "junit.xml"
    result = run("run", str(suite), "-j", "1", "--junit-xml", str(out))
    assert result.exit_code == 2  # c.yaml is invalid
    _schema().validate(str(out))
    root = ET.parse(out).getroot()
    assert root.tag == "testsuites"
    cases = {tc.get("name"): tc for tc in root.iter("testcase")}
    assert {"sine", "square_claim", "cube", "known_bad_claim", "tanh"} <= set(cases)
    assert cases["sine"].find("failure") is None and cases["sine"].find("error") is None
    failure = cases["square_claim"].find("failure")
    assert failure is not None and "expect.values" in failure.get("message")
    assert "claimed 72, exact 24" in failure.text and f"{suite}/a.yaml:" in failure.text  # the failure block
    skipped = cases["known_bad_claim"].find("skipped")
    assert skipped is not None and "xfail: the note says 3" == skipped.get("message")
    invalid = [tc for tc in root.iter("testcase") if tc.find("error") is not None]
    assert len(invalid) == 1 and "c.yaml:4" in invalid[0].get("name")
    totals = {k: int(root.get(k)) for k in ("tests", "failures", "errors", "skipped")}
    assert totals == {"tests": 6, "failures": 1, "errors": 1, "skipped": 1}
    suites = {s.get("name"): int(s.get("tests")) for s in root.iter("testsuite")}
    assert suites == {f"{suite}/a.yaml": 2, f"{suite}/b.yaml": 3, f"{suite}/c.yaml": 1}


def test_junit_xml_stays_valid_xml_with_hostile_text():
    evil = "x\x00\x1b[31m<&>\"\u202e" + "]]>"
    r = Result(evil, evil + ".yaml", "gradient", "reverse", "float64", "fail", message=evil,
               worst_point=WorstPoint({"x": 1.0}, evil, 1.0, 2.0, 1.0, 1.0, 1.0, evil))
    report = RunReport(results=[r], cases=[CaseReport(evil, evil + ".yaml", results=[r], seconds=1e-9)],
                       errors=[CaseFileError(evil, Location(evil, 1, 1))])
    text = junit_xml(report)
    _schema().validate(ET.fromstring(text.split("\n", 1)[1]))
    assert "\x1b" not in text and "\x00" not in text


# --- GitHub ---------------------------------------------------------------------------------

def test_github_annotations_point_at_the_case_line(suite):
    result = run("run", str(suite), "-j", "1", "--format", "github")
    lines = [line for line in result.output.splitlines() if line.startswith("::error")]
    failing = [line for line in lines if "square_claim" in line]
    assert len(failing) == 1
    assert failing[0].startswith(f"::error file={suite}/a.yaml,line=6,title=diffcheck FAIL square_claim%3A ")
    message = failing[0].split("::", 2)[2]
    assert "\n" not in message and "%0A" in message and "claimed 72" in message
    invalid = [line for line in lines if "c.yaml" in line]
    assert invalid == [f"::error file={suite}/c.yaml,line=4,col=11,title=invalid case file::"
                       "in `expr` of case 'broken': unknown function 'foo'"]


def test_github_annotation_escapes_percent_newlines_and_property_separators():
    r = Result("a,b:c", "f,1.yaml", "gradient", "reverse", "float64", "fail", message="50% off\nsecond")
    text = github_annotations(RunReport(results=[r], cases=[CaseReport("a,b:c", "f,1.yaml", results=[r], line=3)]))
    assert text == ("::error file=f%2C1.yaml,line=3,title=diffcheck FAIL a%2Cb%3Ac%3A gradient · reverse · "
                    "float64::what: 50%25 off%0Asecond\n")


def test_step_summary_is_appended_when_github_sets_it(suite, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    run("run", str(suite), "-j", "1", env={"GITHUB_STEP_SUMMARY": str(summary)})
    text = summary.read_text()
    assert text.startswith("earlier step\n### diffcheck: failed")
    assert "| square\\_claim |" in text and "c.yaml:4:11" in text


# --- files and stdout -------------------------------------------------------------------------

def test_dash_writes_json_to_stdout_and_the_console_to_stderr(suite, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner(mix_stderr=False).invoke(main, ["run", str(suite), "-j", "1", "--json", "-"]) \
        if "mix_stderr" in CliRunner.__init__.__code__.co_varnames else \
        CliRunner().invoke(main, ["run", str(suite), "-j", "1", "--json", "-"])
    assert not (tmp_path / "-").exists()
    data = json.loads(result.stdout)
    assert data["exit_code"] == 2 and data["seeds"] and set(data["versions"]) >= {"diffcheck", "torch", "sympy",
                                                                                   "python"}
    assert {c["name"]: c["status"] for c in data["cases"]}["square_claim"] == "fail"
    assert all(c["line"] for c in data["cases"])


def test_report_files_replace_a_symlink_instead_of_writing_through_it(tmp_path):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    out = tmp_path / "rep"
    out.mkdir()
    (out / "index.md").symlink_to(target)
    (tmp_path / "r.json").symlink_to(target)
    report = RunReport(cases=[CaseReport("a", "f.yaml", description="one\n# Injected heading\n---")])
    write_markdown(report, out)
    write_json(report, tmp_path / "r.json")
    assert target.read_text() == "keep me"
    assert not (out / "index.md").is_symlink() and not (tmp_path / "r.json").is_symlink()
    text = (out / "index.md").read_text()
    assert "\n# Injected" not in text and "\\# Injected heading" in text


# --- baselines ------------------------------------------------------------------------------

def _result(case: str, status: str = "pass", ratio: float | None = 0.2, **kw) -> Result:
    return Result(case, "cases/a.yaml", "gradient", "reverse", "float64", status, points=8,
                  tolerance={"rtol": 1e-15, "atol": 0.0}, ratio=ratio, **kw)


def _run_json(path: Path, results: list[Result], versions: dict | None = None) -> Path:
    cases = [CaseReport(r.case, r.file, results=[r]) for r in results]
    write_json(RunReport(results=results, cases=cases, versions=versions or {"torch": "2.13.0"}), path)
    return path


def test_compare_exits_0_on_an_identical_run_and_1_on_a_planted_regression(tmp_path):
    old = _run_json(tmp_path / "old.json", [_result("a"), _result("b"), _result("c", ratio=0.3)])
    same = run("compare", str(old), str(old))
    assert same.exit_code == 0 and "0 regressions" in same.output
    worse = _run_json(tmp_path / "new.json", [_result("a", "fail", 3.0), _result("b"), _result("c", ratio=0.9)],
                      versions={"torch": "2.14.0"})
    result = run("compare", str(old), str(worse))
    assert result.exit_code == 1
    assert "old: torch 2.13.0" in result.output and "new: torch 2.14.0" in result.output
    assert "worse" in result.output and "pass → fail" in result.output
    assert "ratio grew" in result.output  # c: 0.3 → 0.9 is more than 2×
    assert "2 regressions" in result.output
    assert run("compare", "--ratio-factor", "4", str(old), str(worse)).output.count("ratio grew") == 0


def test_a_result_that_appears_or_disappears_is_a_regression_and_noise_is_not(tmp_path):
    old = RunReport(results=[_result("a", ratio=0.001), _result("b")])
    new = RunReport(results=[_result("a", ratio=0.009), _result("z")])
    diff = diff_runs(old, new)
    assert sorted(c.kind for c in diff.regressions) == ["appeared", "disappeared"]  # 0.001 → 0.009: noise
    assert diff.exit_code == 1


def test_run_with_a_baseline_fails_on_a_regression(suite, tmp_path):
    before = tmp_path / "before.json"
    run("run", str(suite / "b.yaml"), "-j", "1", "--json", str(before))
    assert run("run", str(suite / "b.yaml"), "-j", "1", "--baseline", str(before)).exit_code == 0
    (suite / "b.yaml").write_text(textwrap.dedent(SUITE["b.yaml"]).replace("expr: x**3", "expr: x**3\n    torch: x**2"))
    again = run("run", str(suite / "b.yaml"), "-j", "1", "--baseline", str(before))
    assert again.exit_code == 1 and "worse" in again.output


def test_compare_refuses_a_file_that_is_not_a_report(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"not": "a report"}')
    result = run("compare", str(bad), str(bad))
    assert result.exit_code == 2 and "not a diffcheck JSON report" in result.output


# --- shards -----------------------------------------------------------------------------------

def _without_times(data: dict) -> dict:
    data = json.loads(json.dumps(data))
    data.pop("seconds"), data.pop("shard", None)
    for r in data["results"]:
        r.pop("seconds")
    for c in data["cases"]:
        c.pop("seconds")
    return data


def test_shards_merged_give_the_same_results_and_report_as_one_run(suite, tmp_path):
    whole = run("run", str(suite), "-j", "1", "--json", str(tmp_path / "all.json"), "--report", str(tmp_path / "all"))
    shards = []
    for k in (1, 2, 3):
        path = tmp_path / f"s{k}.json"
        run("run", str(suite), "-j", "1", "--shard", f"{k}/3", "--json", str(path))
        shards.append(path)
    names = [{c["name"] for c in json.loads(p.read_text())["cases"]} for p in shards]
    assert sum(len(n) for n in names) == 5 and not (names[0] & names[1] or names[1] & names[2] or names[0] & names[2])
    merged = run("merge", *map(str, shards), "--json", str(tmp_path / "m.json"), "--report", str(tmp_path / "m"))
    assert merged.exit_code == whole.exit_code == 2
    assert _without_times(json.loads((tmp_path / "m.json").read_text())) == \
        _without_times(json.loads((tmp_path / "all.json").read_text()))

    assert _report_files(tmp_path / "m") == _report_files(tmp_path / "all")


def _report_files(folder: Path) -> dict[str, bytes]:
    """Every file of a Markdown report (pages without their Generated line, plots as bytes)."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            data = path.read_bytes()
            if path.suffix == ".md":
                data = b"\n".join(line for line in data.splitlines()
                                  if not line.startswith(GENERATED_PREFIX.encode()))
            out[str(path.relative_to(folder))] = data
    return out


@pytest.mark.slow
def test_shards_of_cases_merged_give_the_report_of_one_run_plots_included(tmp_path):
    """Domain plots with kinks and unstable regions, histograms, descent trajectories: the
    merged report's pages and PNG files are byte for byte those of the single run."""
    pytest.importorskip("matplotlib")
    root = Path(__file__).resolve().parent.parent / "cases"
    files = [str(root / f) for f in ("kinks.yaml", "gradient_descent.yaml", "instabilities.yaml")]
    run("run", *files, "-j", "2", "--no-cache", "--report", str(tmp_path / "all"))
    shards = []
    for k in (1, 2):
        path = tmp_path / f"s{k}.json"
        run("run", *files, "-j", "2", "--no-cache", "--shard", f"{k}/2", "--json", str(path))
        shards.append(str(path))
    run("merge", *shards, "--report", str(tmp_path / "m"))
    whole, merged = _report_files(tmp_path / "all"), _report_files(tmp_path / "m")
    plots = [name for name in whole if name.endswith(".png")]
    assert any(".domain." in n for n in plots) and any(".ratios." in n for n in plots) \
        and any(".descent" in n for n in plots)
    assert sorted(merged) == sorted(whole)
    assert [n for n in whole if merged[n] != whole[n]] == []


def test_no_plots_writes_the_report_without_them(suite, tmp_path):
    pytest.importorskip("matplotlib")
    run("run", str(suite), "-j", "1", "--report", str(tmp_path / "with"), "--json", str(tmp_path / "r.json"))
    assert list((tmp_path / "with" / "plots").glob("*.png"))
    run("run", str(suite), "-j", "1", "--report", str(tmp_path / "without"), "--no-plots")
    run("merge", str(tmp_path / "r.json"), "--report", str(tmp_path / "merged"), "--no-plots")
    for folder in ("without", "merged"):
        assert not (tmp_path / folder / "plots").exists()
        pages = "".join(p.read_text() for p in (tmp_path / folder).rglob("*.md"))
        assert "cube" in pages and "](plots/" not in pages and ".png)" not in pages
    assert "--no-plots" in run("run", "--help").output and "--no-plots" in run("merge", "--help").output


def test_a_bad_shard_is_a_usage_error(suite):
    for bad in ("0/2", "3/2", "x", "1/0"):
        assert run("run", str(suite), "--shard", bad).exit_code == 2
