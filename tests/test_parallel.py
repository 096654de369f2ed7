"""``diffcheck run -j N``: every case in a worker process (``-j 1`` a pool of one), the same run
as ``--in-process``, and a hung or exploding case stopped, reported and kept from costing the
others their results."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from diffcheck import runner
from diffcheck.runner import limits
from diffcheck.results import RunReport

CASES = """\
defaults:
  samples: 6
cases:
  - name: p.sigmoid
    variables: {x: {}}
    expr: sigmoid(x)
  - name: p.tanh
    variables: {x: {}}
    expr: tanh(x)
  - name: p.softmax
    variables: {x: {shape: [4]}}
    expr: softmax(x)
  - name: p.broken_silu
    variables: {x: {}}
    expr: x * sigmoid(x)
    torch: torch.Tensor.detach(torch.sigmoid(x)) * x
  - name: p.relu
    variables: {x: {}}
    expr: relu(x)
    points: [{x: 0}]
  - name: p.mse
    variables: {w: {shape: [2]}}
    constants: {X: [[1.5, -2.0], [0.25, 3.0]], y: [1.0, -1.0]}
    expr: mse(X @ w, y)
    check: [gradient, hessian]
"""

# The user's own torch code, named by `imports`: one that never returns, where Python's
# alarm cannot reach it, and one that asks for far more memory than a case may have.
HELPERS = """\
import signal, time
import torch

def stuck(x):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    time.sleep(120)
    return torch.sigmoid(x)

CALLS = []

def slow(x):
    CALLS.append(1)
    time.sleep(0.3)
    return torch.sigmoid(x)

def hungry(x):
    hoard = torch.ones(1 << 31, dtype=torch.float64)  # 16 GiB
    return torch.sigmoid(x) + hoard[0] * 0
"""

def _helper_case(name: str, helper: str, *extra: str) -> str:
    """A sigmoid case whose torch implementation is one of HELPERS."""
    return "\n".join([f"name: p.{name}", "variables: {x: {}}", "expr: sigmoid(x)", f"torch: {helper}(x)",
                      f'imports: {{{helper}: "diffcheck_test_helpers:{helper}"}}', "samples: 2", *extra, ""])


HUNG = _helper_case("hung", "stuck", "timeout: 1")
# three parts (one per dtype), each at least two calls of 0.3 s: each part alone is within
# the limit, the three together are not
SLOW = _helper_case("slow", "slow", "dtypes: [float64, float32, float16]", "modes: [reverse]", "timeout: 1")
EXPLODING = _helper_case("exploding", "hungry")


def comparable(report: RunReport) -> dict:
    """The run without its timings: what -j must not change."""
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items() if k != "seconds"}
        if isinstance(x, list):
            return [strip(v) for v in x]
        return x
    return {"results": strip([r.to_dict() for r in report.results]),
            "cases": [c.name for c in report.cases],
            "errors": [str(e) for e in report.errors],
            "internal": report.internal_errors, "exit": report.exit_code}


@pytest.fixture
def suite(tmp_path: Path) -> Path:
    (tmp_path / "cases.yaml").write_text(CASES)
    return tmp_path


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "diffcheck_test_helpers.py").write_text(HELPERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_two_workers_give_the_same_run_as_one_and_as_in_process(suite: Path) -> None:
    here = runner.run([str(suite)], runner.RunOptions(in_process=True, cache=False, allow_imports=True))
    one = runner.run([str(suite)], runner.RunOptions(jobs=1, cache=False, allow_imports=True))
    two = runner.run([str(suite)], runner.RunOptions(jobs=2, cache=False, allow_imports=True))
    assert comparable(two) == comparable(one) == comparable(here)
    assert [c.name for c in two.cases] == ["p.sigmoid", "p.tanh", "p.softmax", "p.broken_silu", "p.relu", "p.mse"]
    assert two.exit_code == 1  # the broken silu fails in both


PARTS = """\
cases:
  - name: one.big
    variables: {x: {shape: [3]}}
    expr: softmax(x)
    samples: 5
    dtypes: [float64, float32, bfloat16]
  - name: one.claims
    description: a claim, a wrong claim and xfail, all merged from the parts
    variables: {x: {}}
    expr: sigmoid(x)
    samples: 3
    xfail: the note's derivative is wrong
    expect:
      derivative: sigmoid(x) * (1 + sigmoid(x))
"""


def test_a_case_is_split_into_parts_and_merged_as_one(tmp_path: Path) -> None:
    """Workers check a case's dtypes and claims separately; the merged case is the one -j 1
    gives: the same results in the same order, LaTeX, xfail applied over all the parts."""
    (tmp_path / "parts.yaml").write_text(PARTS)
    one = runner.run([str(tmp_path)], runner.RunOptions(in_process=True, cache=False, allow_imports=True))
    three = runner.run([str(tmp_path)], runner.RunOptions(jobs=3, cache=False, allow_imports=True))
    assert comparable(three) == comparable(one)
    assert [c.expr_latex for c in three.cases] == [c.expr_latex for c in one.cases]
    assert [c.derivatives_latex for c in three.cases] == [c.derivatives_latex for c in one.cases]
    assert {r.dtype for r in three.cases[0].results} == {"float64", "float32", "bfloat16"}
    assert three.cases[1].status == "xfail" and three.exit_code == 0


def test_one_case_alone_uses_the_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "parts.yaml").write_text(PARTS)
    used = []
    real = runner.run_units
    monkeypatch.setattr(runner, "run_units", lambda pool, units, *a, **k: used.append(len(units)) or
                        real(pool, units, *a, **k))
    report = runner.run([str(tmp_path)], runner.RunOptions(jobs=2, cache=False, keyword="one.big"))
    assert used == [3] and [c.name for c in report.cases] == ["one.big"]


def test_progress_ticks_once_per_case_in_workers(suite: Path) -> None:
    seen: list[str] = []
    runner.run([str(suite)], runner.RunOptions(jobs=2, cache=False, allow_imports=True), lambda case: seen.append(case.name))
    assert sorted(seen) == sorted(["p.sigmoid", "p.tanh", "p.softmax", "p.broken_silu", "p.relu", "p.mse"])


def test_fail_fast_stops_at_the_same_case(suite: Path) -> None:
    one = runner.run([str(suite)], runner.RunOptions(in_process=True, cache=False, fail_fast=True))
    two = runner.run([str(suite)], runner.RunOptions(jobs=2, cache=False, fail_fast=True))
    assert [c.name for c in two.cases] == [c.name for c in one.cases] == \
        ["p.sigmoid", "p.tanh", "p.softmax", "p.broken_silu"]
    assert comparable(two) == comparable(one)


posix_only = pytest.mark.skipif(sys.platform != "linux", reason="the limits are tested where /proc and fork exist")


@posix_only
def test_a_hung_case_is_killed_and_reported_and_the_others_finish(suite: Path, helpers: Path) -> None:
    (suite / "hung.yaml").write_text(HUNG)
    start = time.monotonic()
    report = runner.run([str(suite)], runner.RunOptions(jobs=2, cache=False, allow_imports=True))
    took = time.monotonic() - start
    hung = next(c for c in report.cases if c.name == "p.hung")
    (result,) = hung.results
    assert result.status == "error"
    assert "time limit of 1 s" in result.message and "killed" in result.message
    others = [c for c in report.cases if c.name != "p.hung"]
    assert len(others) == 6 and all(r.status != "error" for c in others for r in c.results)
    assert took < 60  # the stuck helper sleeps 120 s: it was killed, not waited for
    assert report.exit_code == 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_time_limit_is_the_whole_case_s_not_each_part_s(tmp_path: Path, helpers: Path, jobs: int) -> None:
    """Under -j 1 the case's timeout bounds the whole case; in workers it bounds its parts
    together, not each of them (which would let a case with 3 dtypes run for 3 timeouts)."""
    (tmp_path / "slow.yaml").write_text(SLOW)
    report = runner.run([str(tmp_path / "slow.yaml")], runner.RunOptions(jobs=jobs, cache=False, allow_imports=True))
    (case,) = report.cases
    errors = [r for r in case.results if r.status == "error"]
    assert errors and all("time limit of 1 s" in r.message for r in errors), [r.to_dict() for r in case.results]
    assert report.exit_code == 1


def test_each_part_alone_is_within_the_limit(tmp_path: Path, helpers: Path) -> None:
    """What makes the test above discriminate: one dtype of the slow case passes."""
    (tmp_path / "slow.yaml").write_text(SLOW.replace("[float64, float32, float16]", "[float64]"))
    report = runner.run([str(tmp_path / "slow.yaml")], runner.RunOptions(jobs=2, cache=False, allow_imports=True))
    assert {r.status for r in report.results} == {"pass"}


@posix_only
@pytest.mark.parametrize("jobs", [1, 2])
def test_an_exploding_case_is_stopped_by_its_memory_limit(suite: Path, helpers: Path,
                                                          monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    """In workers and in one process alike: the case that asks for 16 GiB gets an error, the
    limit is lifted after it, and the other cases run."""
    import resource
    monkeypatch.setenv("DIFFCHECK_CASE_MEMORY", "1G")
    (suite / "exploding.yaml").write_text(EXPLODING)
    before = resource.getrlimit(resource.RLIMIT_AS)
    report = runner.run([str(suite)], runner.RunOptions(jobs=jobs, cache=False, allow_imports=True))
    assert resource.getrlimit(resource.RLIMIT_AS) == before
    exploding = next(c for c in report.cases if c.name == "p.exploding")
    assert exploding.results and all(r.status == "error" for r in exploding.results
                                     if r.check != "value" or r.status == "error")
    assert any("memory" in (r.message or "") or "allocate" in (r.message or "") for r in exploding.results)
    others = [c for c in report.cases if c.name != "p.exploding"]
    assert len(others) == 6 and all(r.status != "error" for c in others for r in c.results)


def test_case_memory_reads_units(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DIFFCHECK_CASE_MEMORY", "512M")
    assert limits.case_memory() == 512 << 20
    monkeypatch.setenv("DIFFCHECK_CASE_MEMORY", "2G")
    assert limits.case_memory() == 2 << 30
    monkeypatch.setenv("DIFFCHECK_CASE_MEMORY", "0")
    assert limits.case_memory() is None
    monkeypatch.delenv("DIFFCHECK_CASE_MEMORY")
    assert limits.case_memory() == limits.DEFAULT_MEMORY


def test_the_cli_runs_in_workers(suite: Path, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from diffcheck.cli import main
    out = tmp_path / "two.json"
    result = CliRunner().invoke(main, ["run", str(suite), "-j", "2", "--no-cache", "--json", str(out)])
    assert result.exit_code == 1, result.output
    data = json.loads(out.read_text())
    assert {r["case"] for r in data["results"]} == {"p.sigmoid", "p.tanh", "p.softmax", "p.broken_silu",
                                                    "p.relu", "p.mse"}


def test_the_parent_s_collector_is_whole_again_after_a_run(suite: Path) -> None:
    """The parent freezes its objects while workers share them (gc.freeze), and unfreezes
    them after: a long-lived caller does not keep them out of collection."""
    import gc

    runner.run([str(suite)], runner.RunOptions(jobs=2, cache=False, allow_imports=True))
    assert gc.get_freeze_count() == 0


@posix_only
def test_a_caller_s_earlier_alarm_still_goes_off_inside_a_case() -> None:
    """pytest-timeout's signal method (or any caller's SIGALRM) is not cancelled by a case's limit."""
    import signal
    from diffcheck.errors import CaseTimeout
    fired = []
    previous = signal.signal(signal.SIGALRM, lambda *a: fired.append(time.monotonic()))
    try:
        start = time.monotonic()
        signal.setitimer(signal.ITIMER_REAL, 0.2)
        with runner.time_limit(5.0):
            time.sleep(0.6)  # the caller's alarm interrupts the sleep; sleep again for the rest
            while time.monotonic() - start < 0.6:
                time.sleep(0.05)
        assert len(fired) == 1 and 0.15 < fired[0] - start < 0.5
        assert signal.getitimer(signal.ITIMER_REAL)[0] == 0  # nothing left armed
        with pytest.raises(CaseTimeout):  # and the case's own limit still holds after it
            signal.setitimer(signal.ITIMER_REAL, 0.1)
            with runner.time_limit(0.5):
                time.sleep(2)
        assert len(fired) == 2
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@posix_only
def test_a_caller_s_later_alarm_is_set_again_after_the_case() -> None:
    import signal
    from diffcheck.errors import CaseTimeout
    fired = []
    handler = lambda *a: fired.append(1)  # noqa: E731
    previous = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 3.0)
        with pytest.raises(CaseTimeout):
            with runner.time_limit(0.2):
                time.sleep(2)
        left, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 2.0 < left < 2.9 and not fired
        assert signal.getsignal(signal.SIGALRM) is handler
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
