"""Every fault contained, nothing lost: a segfault, a hang in C code and a change of torch's
global state each cost one case, under ``-j 1`` and under pytest; Ctrl-C and SIGTERM keep
what finished (exit 130); workers die with their parent; a FIFO never hangs the loader; a
case file that is slow or huge to read is an error of its own."""

from __future__ import annotations

import dataclasses
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from diffcheck import runner
from diffcheck.results import EXIT_FAILED, EXIT_INTERRUPTED

pytest_plugins = ["pytester"]

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="workers are forked and watched where /proc exists")

HELPERS = """\
import ctypes, os, signal, time
import torch

def segfault(x):
    ctypes.string_at(0)          # reads address 0: SIGSEGV in C
    return torch.sigmoid(x)

def stuck(x):
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
    ctypes.CDLL(None).sleep(120)  # in C, where no Python alarm reaches it
    return torch.sigmoid(x)

def dtype_changer(x):
    torch.set_default_dtype(torch.float64)
    return torch.sigmoid(x)

def precision_changer(x):
    torch.set_float32_matmul_precision("medium")
    return torch.sigmoid(x)

def slow(x):
    mark = os.environ.get("DIFFCHECK_TEST_MARK")
    if mark:
        with open(mark, "w") as f:
            f.write(str(os.getpid()))
    time.sleep(30)
    return torch.sigmoid(x)
"""

GOOD = """\
defaults:
  samples: 6
cases:
  - name: good.sigmoid
    variables: {x: {}}
    expr: sigmoid(x)
  - name: good.tanh
    variables: {x: {}}
    expr: tanh(x)
  - name: good.matmul
    variables: {w: {shape: [3]}}
    constants: {A: [[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]}
    expr: sum(A @ w)
    dtypes: [float32]
"""


def _bad(name: str, helper: str, *extra: str) -> str:
    return "\n".join([f"name: bad.{name}", "variables: {x: {}}", "expr: sigmoid(x)", f"torch: {helper}(x)",
                      f'imports: {{{helper}: "diffcheck_fault_helpers:{helper}"}}', "samples: 1", *extra, ""])


def _imports_opt_in() -> dict:
    """The `imports:` opt-in where this version of diffcheck asks for one."""
    fields = {f.name for f in dataclasses.fields(runner.RunOptions)}
    return {"allow_imports": True} if "allow_imports" in fields else {}


def _cli_opt_in() -> list[str]:
    from diffcheck.cli import run
    return ["--allow-imports"] if any("--allow-imports" in p.opts for p in run.params) else []


@pytest.fixture
def helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "diffcheck_fault_helpers.py").write_text(HELPERS)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return tmp_path


def _suite(root: Path, *bad: str) -> Path:
    cases = root / "cases"
    cases.mkdir()
    (cases / "good.yaml").write_text(GOOD)
    for i, text in enumerate(bad):
        (cases / f"bad{i}.yaml").write_text(text)
    return cases


def _assert_good_ones_pass(report) -> None:
    good = [c for c in report.cases if c.name.startswith("good.")]
    assert [c.name for c in good] == ["good.sigmoid", "good.tanh", "good.matmul"]
    assert all(r.status == "pass" for c in good for r in c.results), [r.to_dict() for c in good for r in c.results]


@linux_only
def test_a_segfault_costs_one_case(tmp_path: Path, helpers: Path) -> None:
    cases = _suite(tmp_path, _bad("segfault", "segfault"))
    report = runner.run([str(cases)], runner.RunOptions(jobs=1, cache=False, **_imports_opt_in()))
    (bad,) = [c for c in report.cases if c.name == "bad.segfault"]
    assert [r.status for r in bad.results] == ["error"]
    assert "SIGSEGV" in bad.results[0].message
    _assert_good_ones_pass(report)
    assert report.exit_code == EXIT_FAILED


@linux_only
def test_a_hang_in_c_code_is_killed_at_the_limit(tmp_path: Path, helpers: Path) -> None:
    cases = _suite(tmp_path, _bad("stuck", "stuck", "timeout: 1"))
    start = time.monotonic()
    report = runner.run([str(cases)], runner.RunOptions(jobs=1, cache=False, **_imports_opt_in()))
    assert time.monotonic() - start < 60  # the helper sleeps 120 s in C
    (bad,) = [c for c in report.cases if c.name == "bad.stuck"]
    assert [r.status for r in bad.results] == ["error"]
    assert "time limit of 1 s" in bad.results[0].message and "killed" in bad.results[0].message
    _assert_good_ones_pass(report)
    assert report.exit_code == EXIT_FAILED


@pytest.mark.parametrize("in_process", [False, True])
def test_a_case_that_changes_torch_state_is_an_error_and_the_next_starts_clean(
        tmp_path: Path, helpers: Path, in_process: bool) -> None:
    import torch
    before = (torch.get_default_dtype(), torch.get_float32_matmul_precision())
    cases = _suite(tmp_path, _bad("dtype", "dtype_changer"), _bad("precision", "precision_changer"))
    report = runner.run([str(cases)], runner.RunOptions(jobs=1, cache=False, in_process=in_process,
                                                       **_imports_opt_in()))
    messages = {c.name: [r.message for r in c.results] for c in report.cases if c.name.startswith("bad.")}
    assert len(messages["bad.dtype"]) == 1 and "default dtype" in messages["bad.dtype"][0]
    assert "torch.float32 → torch.float64" in messages["bad.dtype"][0]
    assert len(messages["bad.precision"]) == 1 and "float32 matmul precision" in messages["bad.precision"][0]
    _assert_good_ones_pass(report)
    assert report.exit_code == EXIT_FAILED
    assert (torch.get_default_dtype(), torch.get_float32_matmul_precision()) == before


def test_a_case_that_replaces_a_torch_function_is_an_error() -> None:
    import torch

    from diffcheck.runner import state
    before = state.snapshot()
    original = torch.sin
    try:
        torch.sin = lambda x: x
        found = state.changes(before)
        assert found == ["attributes of torch (sin)"]
        state.restore(before)
        assert torch.sin is original and state.changes(before) == []
    finally:
        torch.sin = original


@linux_only
def test_under_pytest_each_fault_costs_one_item(pytester: pytest.Pytester, helpers: Path) -> None:
    pytester.makepyfile(diffcheck_fault_helpers=HELPERS)
    pytester.syspathinsert()
    pytester.makefile(".yaml", good=GOOD, segv=_bad("segfault", "segfault"),
                      stuck=_bad("stuck", "stuck", "timeout: 1"), state=_bad("dtype", "dtype_changer"))
    extra = ["-o", "diffcheck_allow_imports=true"] if _imports_opt_in() else []
    files = ["good.yaml", "segv.yaml", "stuck.yaml", "state.yaml"]
    result = pytester.runpytest("--diffcheck", "-p", "no:cacheprovider", *extra, *files)
    result.assert_outcomes(passed=3, failed=3)
    result.stdout.fnmatch_lines(["*SIGSEGV*"])
    result.stdout.fnmatch_lines(["*time limit of 1 s*"])
    result.stdout.fnmatch_lines(["*default dtype*"])


def _start_run(cases: Path, out: Path, *extra: str) -> subprocess.Popen:
    # -X faulthandler: a run that hangs can be made to print where (SIGABRT, see _communicate)
    return subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "diffcheck", "run", str(cases), "-j", "1",
                             "--no-cache",
                             "--json", str(out / "run.json"), "--report", str(out / "report"), *_cli_opt_in(),
                             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path: Path, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists() or not path.read_text():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the slow case never started"
        time.sleep(0.1)


@linux_only
@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_keeps_what_finished_and_exits_130(tmp_path: Path, helpers: Path,
                                                              monkeypatch: pytest.MonkeyPatch, signum) -> None:
    """The slow case is the smallest, so -j 1 checks it last: when it starts, the good cases
    have finished. Ctrl-C (or SIGTERM) then ends the run with them in the JSON and the report."""
    mark = tmp_path / "mark"
    monkeypatch.setenv("DIFFCHECK_TEST_MARK", str(mark))
    cases = _suite(tmp_path, _bad("slow", "slow", "timeout: 120"))
    process = _start_run(cases, tmp_path)
    _wait_for(mark, process)
    process.send_signal(signum)
    out, err = _communicate(process, 60)
    assert process.returncode == EXIT_INTERRUPTED, err
    data = json.loads((tmp_path / "run.json").read_text())
    assert data["exit_code"] == EXIT_INTERRUPTED and data["interrupted"] is True
    assert data["not_run"] == ["bad.slow"]
    assert {r["case"] for r in data["results"]} == {"good.sigmoid", "good.tanh", "good.matmul"}
    assert "good.matmul" in (tmp_path / "report" / "index.md").read_text()
    assert "interrupted" in err and "1 not run" in err
    worker = int(mark.read_text())
    assert _gone(worker, 10)


def _communicate(process: subprocess.Popen, seconds: float) -> tuple[str, str]:
    """communicate(), and if the run has not ended in ``seconds``: SIGABRT, so that its
    faulthandler prints every thread's stack, and fail with that."""
    try:
        return process.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        try:
            out, err = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
        pytest.fail(f"the run did not end {seconds:g} s after the signal; its threads then:\n{err[-6000:]}")


def _gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/status") as f:
                if any(line.startswith("State:") and "Z" in line.split()[1] for line in f):
                    return True  # a zombie waiting for its reaper: dead
        except FileNotFoundError:
            return True
        time.sleep(0.1)
    return False


@linux_only
@pytest.mark.slow
def test_workers_die_with_a_killed_parent(tmp_path: Path, helpers: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mark = tmp_path / "mark"
    monkeypatch.setenv("DIFFCHECK_TEST_MARK", str(mark))
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "slow.yaml").write_text(_bad("slow", "slow", "timeout: 120"))
    process = _start_run(cases, tmp_path)
    _wait_for(mark, process)
    worker = int(mark.read_text())
    process.kill()
    process.communicate(timeout=30)
    assert _gone(worker, 10), "the worker outlived its SIGKILLed parent"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_named_yaml_is_refused_not_waited_on(tmp_path: Path) -> None:
    (tmp_path / "good.yaml").write_text(GOOD)
    os.mkfifo(tmp_path / "pipe.yaml")
    found = []
    thread = threading.Thread(target=lambda: found.append(runner.list_cases([str(tmp_path)])), daemon=True)
    thread.start()
    thread.join(60)
    assert found, "reading a folder with a FIFO hung"
    (cases, errors), = found
    assert [c.name for c in cases] == ["good.sigmoid", "good.tanh", "good.matmul"]
    (error,) = errors
    assert "pipe.yaml" in str(error) and "not a regular file" in str(error) and "FIFO" in str(error)


@linux_only
@pytest.mark.parametrize("problem", ["time", "memory"])
def test_a_case_file_too_slow_or_too_big_to_read_is_an_error_of_its_own(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, problem: str) -> None:
    """The loader runs in a child under a time and memory limit: a file past either is a
    case-file error, and the other files are read."""
    from diffcheck.loader import load_file
    from diffcheck.runner import isolated

    def hostile(path):
        if "hostile" in str(path):
            if problem == "time":
                while True:  # CPU time: the limit is RLIMIT_CPU
                    pass
            else:
                hoard = bytearray(8 << 30)  # past the child's memory limit
                return [], [hoard]
        return load_file(path)
    monkeypatch.setattr(isolated, "load_file", hostile)
    monkeypatch.setattr(isolated, "LOAD_SECONDS", 1.0)
    monkeypatch.setattr(isolated, "LOAD_MEMORY", 512 << 20)
    (tmp_path / "a_good.yaml").write_text(GOOD)
    (tmp_path / "hostile.yaml").write_text(GOOD.replace("good.", "hostile."))
    (tmp_path / "z_good.yaml").write_text(GOOD.replace("good.", "later."))
    start = time.monotonic()
    cases, errors = runner.list_cases([str(tmp_path)])
    assert time.monotonic() - start < 60
    assert [c.name for c in cases][:3] == ["good.sigmoid", "good.tanh", "good.matmul"]
    assert len(cases) == 6
    (error,) = errors
    assert "hostile.yaml" in str(error)
    assert ("more than 1 s of CPU time" if problem == "time" else "more than 512 MiB") in str(error)


def test_the_run_memory_budget_is_split_across_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    from diffcheck.runner import limits
    monkeypatch.setenv("DIFFCHECK_RUN_MEMORY", "6G")
    assert limits.worker_memory(1) == 6 << 30
    assert limits.worker_memory(3) == 2 << 30      # a third of the run's budget each
    monkeypatch.setenv("DIFFCHECK_RUN_MEMORY", "0")
    assert limits.worker_memory(8) is None         # no run-wide budget
    monkeypatch.delenv("DIFFCHECK_RUN_MEMORY")
    total = limits.physical_memory()
    if total:
        assert limits.worker_memory(8) == total * 3 // 4 // 8


@linux_only
def test_a_small_run_budget_holds_across_workers(tmp_path: Path, helpers: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers under a 2 GiB budget: each may grow by 1 GiB, so a case asking for 1.5 GiB
    is stopped though the case cap (4 GiB) would let it through."""
    (helpers / "diffcheck_fault_helpers.py").write_text(HELPERS + """
def big(x):
    hoard = torch.ones(3 << 26, dtype=torch.float64)  # 1.5 GiB
    return torch.sigmoid(x) + hoard[0] * 0
""")
    monkeypatch.setenv("DIFFCHECK_RUN_MEMORY", "2G")
    # an earlier test of this process imported the helpers without `big`: read them afresh
    monkeypatch.delitem(sys.modules, "diffcheck_fault_helpers", raising=False)
    importlib.invalidate_caches()
    cases = _suite(tmp_path, _bad("big", "big"))
    report = runner.run([str(cases)], runner.RunOptions(jobs=2, cache=False, **_imports_opt_in()))
    assert not report.internal_errors and not report.errors, (report.internal_errors, report.errors)
    (bad,) = [c for c in report.cases if c.name == "bad.big"]
    assert any(r.status == "error" and ("memory" in r.message or "allocate" in r.message) for r in bad.results)
    _assert_good_ones_pass(report)


def test_a_warning_shown_by_torch_is_not_a_change_of_state():
    """The warnings machinery records what a module has shown in its ``__warningregistry__``
    (F.glu's deprecation note did, and a correct case was reported as an error)."""
    import warnings

    import torch

    from diffcheck.runner import state
    before = state.snapshot()
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        warnings.warn_explicit("a note", UserWarning, "functional.py", 1, module="torch.nn.functional",
                               registry=vars(torch.nn.functional).setdefault("__warningregistry__", {}))
    assert state.changes(before) == []


@linux_only
def test_pytest_collection_reads_case_files_under_the_same_limits(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pytester: pytest.Pytester) -> None:
    """`pytest --diffcheck` reads each case file in the same forked reader as `diffcheck run`:
    a file that takes too long to read is one invalid item, and the other files are collected."""
    from diffcheck.loader import load_file
    from diffcheck.runner import isolated

    def hostile(path, *args, **kwargs):
        if "hostile" in str(path):
            while True:  # CPU time: the limit is RLIMIT_CPU
                pass
        return load_file(path, *args, **kwargs)
    monkeypatch.setattr(isolated, "load_file", hostile)
    monkeypatch.setattr(isolated, "LOAD_SECONDS", 1.0)
    pytester.makefile(".yaml", **{"cases/a_good": GOOD, "cases/hostile": GOOD.replace("good.", "hostile.")})
    result = pytester.runpytest_inprocess("--diffcheck", "--collect-only", "-q", "cases")
    out = result.stdout.str()
    assert "cases/a_good.yaml::good.sigmoid" in out and "hostile.yaml::invalid" in out, out
