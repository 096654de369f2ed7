"""The command line, through click's CliRunner, with exact exit codes.

The ``fake_runner`` fixture stands in for :mod:`diffcheck.runner` so these tests pin the
wiring (options, outputs, exit codes) without checking real cases.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffcheck import cli
from diffcheck.case import Case, Variable
from diffcheck.errors import CaseFileError, Location
from diffcheck.results import CaseReport, Result, RunReport

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class FakeRunOptions:
    """The fields of ``diffcheck.runner.RunOptions``."""

    keyword: str | None = None
    dtypes: tuple[str, ...] = ()
    seed: int | None = None
    fail_fast: bool = False
    verbose: int = 0
    device: str = "cpu"
    search: bool = False
    jobs: int | str = 1
    in_process: bool = False
    cache: bool = True
    allow_imports: bool | None = None
    shard: tuple[int, int] | None = None


@dataclass
class FakeRunner:
    """Stands in for ``diffcheck.runner``: ``run`` reports each case of ``report`` to the
    progress callback and returns ``report``, or raises ``raises`` after reporting them;
    ``list_cases`` returns ``cases`` and ``errors``. Every call is recorded."""

    report: RunReport = field(default_factory=RunReport)
    raises: Exception | None = None
    cases: list[Case] = field(default_factory=list)
    errors: list[CaseFileError] = field(default_factory=list)
    calls: list[tuple] = field(default_factory=list)
    RunOptions = FakeRunOptions

    def run(self, paths, options, progress=None):
        self.calls.append(("run", list(paths), options))
        for case in self.report.cases:
            if progress is not None:
                progress(case)
        if self.raises is not None:
            raise self.raises
        return self.report

    def list_cases(self, paths, keyword=None):
        self.calls.append(("list", list(paths), keyword))
        return self.cases, self.errors

    def versions(self):
        return {"diffcheck": "0.0.0"}


@pytest.fixture
def fake_runner(monkeypatch) -> FakeRunner:
    fake = FakeRunner()
    monkeypatch.setattr(cli, "runner", fake)
    return fake


@pytest.fixture
def case_file(tmp_path) -> str:
    path = tmp_path / "cases.yaml"
    path.write_text("name: sigmoid\nvariables: {x: {}}\nexpr: sigmoid(x)\n")
    return str(path)


def invoke(*args: str):
    return CliRunner().invoke(cli.main, list(args))


def result(status: str, case: str = "sigmoid", **kw) -> Result:
    return Result(case, "cases.yaml", "gradient", "reverse", "float64", status, points=32, **kw)


def report_of(*results: Result, **kw) -> RunReport:
    cases: dict[str, CaseReport] = {}
    for r in results:
        cases.setdefault(r.case, CaseReport(r.case, r.file)).results.append(r)
    return RunReport(results=list(results), cases=list(cases.values()), seed=0,
                     versions={"diffcheck": "0.1.0"}, **kw)


BAD_FILE = CaseFileError("unknown key 'exprr'", Location("cases/bad.yaml", 4, 1),
                         hint="did you mean 'expr'?")


# --- exit codes ---------------------------------------------------------------------------

def test_all_passing_exits_0(fake_runner, case_file):
    fake_runner.report = report_of(result("pass"), result("xfail", "known_bad"))
    out = invoke("run", case_file)
    assert out.exit_code == 0, out.output
    assert out.stdout.rstrip().splitlines()[-1].startswith("1 passed, 0 failed, 1 xfail")


def test_a_failure_exits_1(fake_runner, case_file):
    fake_runner.report = report_of(result("pass"), result("fail", "broken_silu"))
    out = invoke("run", case_file)
    assert out.exit_code == 1
    assert "1 passed, 1 failed" in out.stdout


def test_an_invalid_case_file_exits_2_with_the_error_on_stderr(fake_runner, case_file):
    fake_runner.report = report_of(result("pass"), errors=[BAD_FILE])
    out = invoke("run", case_file)
    assert out.exit_code == 2
    assert "cases/bad.yaml:4:1: unknown key 'exprr' (did you mean 'expr'?)" in out.stderr
    assert "cases/bad.yaml" not in out.stdout


def test_an_internal_error_exits_3_and_still_writes_what_was_produced(fake_runner, case_file,
                                                                      tmp_path):
    fake_runner.report = report_of(result("pass"))
    fake_runner.raises = RuntimeError("boom")
    json_file = tmp_path / "out.json"
    out = invoke("run", case_file, "--json", str(json_file), "--report", str(tmp_path / "md"))
    assert out.exit_code == 3
    assert "RuntimeError: boom" in out.stderr
    assert "Traceback" in out.stderr
    data = json.loads(json_file.read_text())
    assert [r["status"] for r in data["results"]] == ["pass"]  # the case finished before it
    assert "RuntimeError: boom" in data["internal_errors"][0]
    assert "## Internal errors" in (tmp_path / "md" / "index.md").read_text()


def test_internal_errors_reported_by_the_runner_exit_3(fake_runner, case_file):
    fake_runner.report = report_of(result("pass"), internal_errors=["case 'x': KeyError"])
    out = invoke("run", case_file)
    assert out.exit_code == 3
    assert "internal error: case 'x': KeyError" in out.stderr


def test_no_case_found_exits_5(fake_runner, case_file):
    out = invoke("run", case_file)
    assert out.exit_code == 5
    assert "0 passed, 0 failed" in out.stdout


# --- options ------------------------------------------------------------------------------

def test_options_reach_the_runner(fake_runner, case_file):
    fake_runner.report = report_of(result("pass"))
    out = invoke("run", case_file, case_file, "-k", "sig and not tanh", "--dtype", "float32",
                 "--dtype", "bfloat16", "--seed", "3", "-x", "-vv", "--search", "-j", "4",
                 "--no-cache")
    assert out.exit_code == 0, out.output
    (_, paths, options), = fake_runner.calls
    assert paths == [case_file, case_file]
    assert options == FakeRunOptions(keyword="sig and not tanh", dtypes=("float32", "bfloat16"),
                                     seed=3, fail_fast=True, verbose=2, device="cpu",
                                     search=True, jobs=4, cache=False)


def test_defaults_reach_the_runner(fake_runner, case_file):
    fake_runner.report = report_of(result("pass"))
    invoke("run", case_file)
    assert fake_runner.calls[0][2] == FakeRunOptions(jobs="auto")  # the runner's policy decides


@pytest.mark.parametrize("cpus, device, jobs", [({0, 1}, "cpu", 2), ({3}, "cpu", 1), (set(range(64)), "cpu", 8),
                                                 ({0, 1}, "cuda", 1)])
def test_auto_jobs_is_one_per_cpu(monkeypatch, cpus, device, jobs):
    monkeypatch.setattr(cli.os, "sched_getaffinity", lambda pid: cpus, raising=False)
    assert cli.auto_jobs(device) == jobs


def test_auto_jobs_is_one_where_workers_cannot_be_forked(monkeypatch):
    import multiprocessing

    monkeypatch.setattr(cli.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(multiprocessing, "get_all_start_methods", lambda: ["spawn"])
    assert cli.auto_jobs("cpu") == 1


def test_jobs_auto_and_a_number_reach_the_runner(fake_runner, case_file):
    fake_runner.report = report_of(result("pass"))
    invoke("run", case_file, "-j", "auto")
    invoke("run", case_file, "-j", "1")
    invoke("run", case_file, "-j", "1", "--in-process")
    assert [c[2].jobs for c in fake_runner.calls] == ["auto", 1, 1]
    assert [c[2].in_process for c in fake_runner.calls] == [False, False, True]


def test_quiet_shows_only_failures(fake_runner, case_file):
    fake_runner.report = report_of(result("pass", "good_case"), result("fail", "bad_case"))
    out = invoke("run", case_file, "-q")
    assert out.exit_code == 1
    assert fake_runner.calls[0][2].verbose == -1
    assert "bad_case" in out.stdout
    assert "good_case" not in out.stdout


@pytest.mark.parametrize("args, says", [
    (["--dtype", "float8"], "'float8' is not one of"),
    (["-k", "sig and"], "invalid -k expression"),
    (["-j", "0"], "0 is not a number of jobs"),
    (["-j", "many"], "'many' is neither a number of jobs nor 'auto'"),
    (["--seed", "abc"], "'abc' is not a valid integer"),
    (["--bogus"], "--bogus"),
])
def test_bad_options_are_usage_errors(fake_runner, case_file, args, says):
    out = invoke("run", case_file, *args)
    assert out.exit_code == 2
    assert says in out.stderr
    assert fake_runner.calls == []


def test_a_missing_path_is_a_usage_error(fake_runner, tmp_path):
    out = invoke("run", str(tmp_path / "nope.yaml"))
    assert out.exit_code == 2
    assert "does not exist" in out.stderr


def test_cuda_without_cuda_is_a_usage_error(fake_runner, case_file, monkeypatch):
    torch = pytest.importorskip("torch")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = invoke("run", case_file, "--device", "cuda")
    assert out.exit_code == 2
    assert "CUDA is not available on this machine" in out.stderr
    assert fake_runner.calls == []


def test_an_unknown_device_is_a_usage_error(fake_runner, case_file):
    pytest.importorskip("torch")
    out = invoke("run", case_file, "--device", "abacus")
    assert out.exit_code == 2
    assert "'abacus' is not a torch device" in out.stderr


def test_version():
    out = invoke("--version")
    assert out.exit_code == 0
    assert out.stdout.startswith("diffcheck 0.")
    assert "\n  torch " in out.stdout and "\n  sympy " in out.stdout


# --- output files -------------------------------------------------------------------------

def test_json_and_markdown_reports_are_written(fake_runner, case_file, tmp_path):
    fake_runner.report = report_of(result("pass"), result("fail", "broken",
                                                          max_abs_error=float("nan")))
    json_file = tmp_path / "deep" / "results.json"
    out = invoke("run", case_file, "--json", str(json_file), "--report", str(tmp_path / "rep"))
    assert out.exit_code == 1
    data = json.loads(json_file.read_text())
    assert data["version"] == 1
    assert data["exit_code"] == 1
    assert [r["case"] for r in data["results"]] == ["sigmoid", "broken"]
    assert data["results"][1]["max_abs_error"] == "nan"
    markdown = (tmp_path / "rep" / "index.md").read_text()
    assert markdown.startswith("# diffcheck report")
    assert "| gradient | reverse | float64 | 32 | — | — | — | **fail** |" in markdown  # the case's results table


def test_an_unwritable_report_is_an_internal_error(fake_runner, case_file, tmp_path):
    fake_runner.report = report_of(result("pass"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    out = invoke("run", case_file, "--json", str(blocker / "results.json"))
    assert out.exit_code == 3
    assert "writing the JSON file" in out.stderr


# --- list ---------------------------------------------------------------------------------

def make_case(name: str, line: int, expr: str) -> Case:
    return Case(name=name, file="cases/act.yaml", location=Location("cases/act.yaml", line, 5),
                expr=expr, variables=(Variable("x"),))


def test_list_prints_one_line_per_case(fake_runner, case_file):
    fake_runner.cases = [make_case("sigmoid", 3, "sigmoid(x)"), make_case("tanh", 7, "tanh(x)")]
    out = invoke("list", case_file, "-k", "sig or tanh")
    assert out.exit_code == 0
    assert out.stdout.splitlines() == ["cases/act.yaml:3 sigmoid — sigmoid(x)",
                                       "cases/act.yaml:7 tanh — tanh(x)"]
    assert fake_runner.calls == [("list", [case_file], "sig or tanh")]


def test_list_with_case_file_errors_exits_2(fake_runner, case_file):
    fake_runner.cases = [make_case("sigmoid", 3, "sigmoid(x)")]
    fake_runner.errors = [BAD_FILE]
    out = invoke("list", case_file)
    assert out.exit_code == 2
    assert out.stdout == "cases/act.yaml:3 sigmoid — sigmoid(x)\n"
    assert out.stderr == "cases/bad.yaml:4:1: unknown key 'exprr' (did you mean 'expr'?)\n"


def test_list_with_no_cases_exits_5(fake_runner, case_file):
    assert invoke("list", case_file).exit_code == 5


def test_list_rejects_a_bad_keyword(fake_runner, case_file):
    out = invoke("list", case_file, "-k", "(sig")
    assert out.exit_code == 2
    assert "never closed" in out.stderr


# --- python -m diffcheck ------------------------------------------------------------------

def test_python_dash_m_runs_the_cli():
    out = subprocess.run([sys.executable, "-m", "diffcheck", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "Usage: diffcheck" in out.stdout
    assert "run" in out.stdout and "list" in out.stdout
