"""diffcheck's speed targets, each measured against its baseline in the same run.

    .venv/bin/python bench/run_bench.py            # everything (a few minutes)
    .venv/bin/python bench/run_bench.py --quick    # n = 64 only, fewer repeats

Every workload runs as its own process (``diffcheck run ...`` with an empty cache
directory of its own: cold; by default in ``-j auto`` workers, one per CPU), timed by wall
clock, with its peak memory: the larger of the biggest process's resident size (``wait4``) and the
sampled PSS of the whole process tree, workers included.
The baselines run in the same session on the same machine:

* the import floor: ``python -c "import torch, sympy"``;
* the bare start: ``python -c "import os, torch, sympy; os._exit(0)"``, the least any
  diffcheck process can take (it leaves through ``os._exit`` too). A target that allows less
  time than this cannot be met by any process on this machine, and its row says so;
* gradcheck (slow mode, float64) at the same 1000 points the softmax case draws, one call
  per point (gradcheck checks one input at a time): reverse mode only, and again with
  ``check_forward_ad=True`` (reverse and forward, as the case checks). The gradcheck time
  is measured inside its process, without its imports.

It prints one row per target: the measured time, the baseline, the ratio, the target and
whether it is met, and the peak memory. The targets are the issue's: ``diffcheck run`` as it
runs by default (``-j auto``). Rows marked INFO are shown beside them for comparison (``-j 1``,
``runner.run()`` in a process that has imported diffcheck already); they are not targets.
The exit code is 0 when every target is met. Nothing here runs under plain pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
DIFFCHECK = [PYTHON, "-m", "diffcheck"]

SOFTMAX = """\
name: softmax_{n}
variables: {{x: {{shape: [{n}]}}}}
expr: softmax(x)
samples: 1000
dtypes: [float64, float32]
modes: [reverse, forward]
"""

FLOAT16 = """\
defaults:
  variables: {x: {domain: [-70000, 70000]}}
  samples: all
  dtypes: [float16]
  modes: [reverse]
cases:
  - name: sigmoid_every_float16
    expr: sigmoid(x)
  - name: tanh_every_float16
    expr: tanh(x)
"""

GRADIENT = """\
name: logsumexp_1024
description: >-
  a scalar function of 1024 variables, its gradient at 100 points, in reverse mode (forward
  mode pushes 1024 tangents through torch, a cost of torch's and not of the reference)
variables: {x: {shape: [1024]}}
expr: logsumexp(x) + sum(x * x) / 2
samples: 100
dtypes: [float64]
modes: [reverse]
"""

INSIDE = """\
import json, sys, time
from diffcheck import runner
start = time.perf_counter()
report = runner.run([sys.argv[1]], runner.RunOptions(cache=False))
print(json.dumps({"seconds": time.perf_counter() - start, "exit": report.exit_code}))
"""

GRADCHECK = """\
import json, sys, time
import numpy as np
import torch
from diffcheck.loader import load_paths
from diffcheck.points import draw
cases, _ = load_paths([sys.argv[1]])
forward = sys.argv[2] == "forward"
points = draw(cases[0], "float64").values["x"]
xs = torch.as_tensor(points, dtype=torch.float64)
fn = lambda x: torch.softmax(x, -1)
start = time.perf_counter()
for x in xs:
    torch.autograd.gradcheck(fn, (x.clone().requires_grad_(True),), fast_mode=False, check_forward_ad=forward)
print(json.dumps({"seconds": time.perf_counter() - start, "points": len(xs)}))
"""


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (diffcheck's worker processes)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            pass
    return out


def _pss_mb(pids: list[int]) -> float:
    """Proportional set size of ``pids`` together: shared pages (the forked workers share
    torch's) counted once in all, not once per process."""
    total = 0
    for p in pids:
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
        except (OSError, StopIteration):
            pass
    return total / 1024


def run(cmd: list[str], env: dict | None = None, cwd: Path = ROOT, tree: bool = False) -> tuple[float, float, str]:
    """(wall seconds, peak memory in MB, stdout) of a child process. The peak is the biggest
    single process's resident size (wait4); with ``tree``, the larger of that and the memory
    of the whole process tree, workers included (the sum of their PSS, sampled every 20 ms:
    reading it costs CPU, so such a run is not also timed)."""
    import threading

    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    tree_peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            tree_peak[0] = max(tree_peak[0], _pss_mb(_tree(proc.pid)))
            done.wait(0.02)
    sampler = threading.Thread(target=sample, daemon=True)
    if tree:
        sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    if tree:
        sampler.join()
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{err[-2000:]}")
    return wall, max(usage.ru_maxrss / 1024, tree_peak[0]), out


def best(times: list[float]) -> float:
    return min(times)


class Bench:
    def __init__(self, quick: bool):
        self.quick = quick
        self.repeats = 1 if quick else 3
        self.work = Path(tempfile.mkdtemp(prefix="diffcheck-bench-"))
        self.rows: list[dict] = []
        self.startup: float | None = None

    def cold_env(self) -> dict:
        cache = Path(tempfile.mkdtemp(dir=self.work, prefix="cache-"))
        return {"DIFFCHECK_CACHE_DIR": str(cache)}

    def diffcheck(self, path: Path, *extra: str, env: dict | None = None,
                  tree: bool = False) -> tuple[float, float, dict]:
        report = self.work / "report.json"
        wall, peak, _ = run(DIFFCHECK + ["run", str(path), "-q", "--json", str(report), *extra],
                            env=env or self.cold_env(), tree=tree)
        return wall, peak, json.loads(report.read_text())

    def memory(self, path: Path, *extra: str) -> float:
        """Peak memory of the whole process tree (one more cold run, not timed)."""
        return self.diffcheck(path, *extra, tree=True)[1]

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text)
        return path

    def row(self, workload: str, seconds: float, baseline: float, baseline_name: str, target: str,
            met: bool | None, peak: float | None = None, note: str = "", kind: str = "speedup",
            bound: float | None = None) -> None:
        """One row: ``kind`` "speedup" shows baseline/time, "floor" time/baseline, "absolute"
        the time itself against the target. ``met`` None is a row shown for comparison, not a
        target of the issue. ``bound``: the most time the target allows; when even the bare
        start of a process that imports torch and SymPy takes longer, the row says so."""
        ratio = baseline / seconds if kind == "speedup" else seconds / baseline if kind == "floor" else seconds
        infeasible = bool(met is False and bound is not None and self.startup is not None
                          and bound < self.startup)
        if infeasible:
            note = (f"cannot be met here: it allows {bound:.2f} s, and a process that only imports torch "
                    f"and SymPy takes {self.startup:.2f} s. " + note)
        self.rows.append({"workload": workload, "seconds": seconds, "baseline": baseline,
                          "baseline_name": baseline_name, "ratio": ratio, "kind": kind,
                          "target": target if met is not None else None, "met": met, "peak_mb": peak,
                          "note": note, "infeasible": infeasible})
        shown = {"speedup": f"{baseline_name} / this = {ratio:5.2f}x",
                 "floor": f"this / {baseline_name} = {ratio:5.2f}x",
                 "absolute": f"{'':>26}"}[kind]
        peak_text = f"peak {peak:5.0f} MB" if peak is not None else " " * 13
        flag = "INFO" if met is None else "MET " if met else "MISS"
        print(f"[{flag}] {workload:46} {seconds:7.2f} s   {shown:34} target {target if met is not None else '-':12} "
              f"{peak_text}  {note}", flush=True)

    # -- baselines ---------------------------------------------------------------------------
    def import_floor(self) -> float:
        times = [run([PYTHON, "-c", "import torch, sympy"])[0] for _ in range(self.repeats + 1)]
        floor = statistics.median(times[1:]) if len(times) > 2 else min(times)
        print(f"import floor (python -c 'import torch, sympy'): {floor:.2f} s  (runs: "
              f"{', '.join(f'{t:.2f}' for t in times)})", flush=True)
        return floor

    def bare_start(self) -> float:
        """The least a diffcheck process can take: start Python, import torch and SymPy, and
        leave without the interpreter's teardown (as diffcheck does, through os._exit)."""
        code = "import os, torch, sympy; os._exit(0)"
        times = [run([PYTHON, "-c", code])[0] for _ in range(self.repeats + 1)]
        self.startup = min(times[1:]) if len(times) > 1 else times[0]
        print(f"bare start ({code!r}): {self.startup:.2f} s  (runs: {', '.join(f'{t:.2f}' for t in times)})",
              flush=True)
        return self.startup

    def inside(self, case: Path) -> float:
        """Seconds of ``runner.run`` in a process that has imported diffcheck already (cold cache)."""
        script = self.write("inside.py", INSIDE)
        times = []
        for _ in range(self.repeats):
            _, _, out = run([PYTHON, str(script), str(case)], env=self.cold_env())
            times.append(json.loads(out.strip().splitlines()[-1])["seconds"])
        return best(times)

    def gradcheck(self, case: Path, forward: bool) -> float:
        script = self.write("gradcheck_baseline.py", GRADCHECK)
        _, _, out = run([PYTHON, str(script), str(case), "forward" if forward else "reverse"])
        return json.loads(out.strip().splitlines()[-1])["seconds"]

    # -- the targets ---------------------------------------------------------------------------
    def softmax(self, n: int, factor: float, floor: float) -> None:
        case = self.write(f"softmax_{n}.yaml", SOFTMAX.format(n=n))
        g_rev = self.gradcheck(case, forward=False)
        g_both = self.gradcheck(case, forward=True)
        print(f"gradcheck slow mode, float64, 1000 points, n = {n}: reverse {g_rev:.2f} s, "
              f"reverse + forward {g_both:.2f} s", flush=True)
        jobs = _auto_jobs()
        for label, extra in ((f"-j auto = {jobs}", ()), ("-j 1", ("-j", "1"))):
            wall = best([self.diffcheck(case, *extra)[0] for _ in range(self.repeats)])
            peak = self.memory(case, *extra)
            # the target is `diffcheck run` as it runs by default (-j auto); -j 1 is shown beside it
            met = g_both / wall >= factor and peak < 1024
            self.row(f"softmax n={n} ({label}): process", wall, g_both, "gradcheck(rev+fwd)",
                     f">={factor:g}x <1GB", None if extra else met, peak,
                     f"gradcheck(rev) / this = {g_rev / wall:.2f}x", bound=g_both / factor)
            if extra:
                work = max(wall - floor, 1e-9)
                self.row(f"softmax n={n} (-j 1): process minus the import floor", work, g_both,
                         "gradcheck(rev+fwd)", "", None, None)
        in_run = self.inside(case)
        self.row(f"softmax n={n}: runner.run() once imported", in_run, g_both, "gradcheck(rev+fwd)",
                 "", None, None, "one process; torch's lazy imports included")

    def float16(self, floor: float) -> None:
        case = self.write("every_float16.yaml", FLOAT16)
        walls, peaks = [], []
        for _ in range(self.repeats):
            wall, peak, report = self.diffcheck(case)
            walls.append(wall)
            peaks.append(peak)
        wall = best(walls)
        self.row("every float16 input of sigmoid and tanh", wall, floor, "floor", "<= 3x",
                 wall <= 3 * floor, self.memory(case), f"{_points(report)} points, reference included",
                 kind="floor")

    def gradient(self) -> None:
        case = self.write("gradient_1024.yaml", GRADIENT)
        walls, peaks = [], []
        for _ in range(self.repeats):
            wall, peak, report = self.diffcheck(case)
            walls.append(wall)
            peaks.append(peak)
        wall, in_run = best(walls), self.inside(case)
        self.row("gradient, 1024 variables, 100 points: run()", in_run, 2.0, "2 s", "<= 2 s",
                 in_run <= 2.0, None, "runner.run() once imported: derivation, torch, reference", kind="absolute")
        self.row("gradient, 1024 variables, 100 points: process", wall, 2.0, "2 s", "",
                 None, self.memory(case), "the whole process: Python, torch, SymPy and diffcheck's own "
                 "imports included", kind="absolute")

    def suite(self, floor: float) -> None:
        """The whole suite: as `diffcheck run cases/` runs by default (-j auto, one worker per
        CPU) and in one process (-j 1), each cold and warm."""
        cases = ROOT / "cases"
        jobs = _auto_jobs()
        measured = {}
        for label, extra in ((f"-j auto = {jobs}", ()), ("-j 1", ("-j", "1"))):
            colds = []
            for _ in range(self.repeats):  # each cold run with an empty cache of its own
                env = self.cold_env()
                wall, peak, report = self.diffcheck(cases, *extra, env=env)
                colds.append(wall)
            warm = best([self.diffcheck(cases, *extra, env=env)[0] for _ in range(self.repeats)])
            # one process: its resident size is the measure; workers: the whole tree's
            measured[label] = (best(colds), warm, peak if extra else self.memory(cases, *extra), report)
        (cold_a, warm_a, peak_a, report), (cold_1, warm_1, peak_1, _) = measured.values()
        auto = f"-j auto = {jobs}"
        self.row(f"diffcheck run cases/ ({auto}), cold cache", cold_a, floor, "floor", "<= 2.5x",
                 cold_a <= 2.5 * floor, peak_a,
                 f"{len(report['results'])} results; {cold_1 / cold_a:.2f}x faster than -j 1", kind="floor")
        self.row(f"diffcheck run cases/ ({auto}), warm cache", warm_a, floor, "floor", "<= 2.5x",
                 warm_a <= 2.5 * floor, None, f"{warm_1 / warm_a:.2f}x faster than -j 1", kind="floor")
        self.row("diffcheck run cases/ -j 1, cold cache", cold_1, floor, "floor", "", None, peak_1,
                 "one process", kind="floor")
        self.row("diffcheck run cases/ -j 1, warm cache", warm_1, floor, "floor", "", None, None,
                 "one process", kind="floor")

    def close(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)


def _auto_jobs() -> int:
    """What `-j auto` picks here (diffcheck.cli.auto_jobs, without importing torch)."""
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def _points(report: dict) -> int:
    return sum(r.get("points") or 0 for r in report.get("results", []) if r.get("check") == "value")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="n = 64 only, one repeat")
    parser.add_argument("--json", metavar="FILE", help="also write the rows as JSON")
    args = parser.parse_args()
    bench = Bench(args.quick)
    print(f"diffcheck benchmark: python {sys.version.split()[0]}, {os.cpu_count()} cores, "
          f"{time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    try:
        floor = bench.import_floor()
        bench.bare_start()
        bench.float16(floor)
        bench.gradient()
        bench.softmax(64, 10, floor)
        if not args.quick:
            bench.softmax(128, 5, floor)
        bench.suite(floor)
    finally:
        bench.close()
    targets = [r for r in bench.rows if r["met"] is not None]
    met = sum(r["met"] for r in targets)
    cannot = sum(r["infeasible"] for r in targets)
    print(f"\n{met} of {len(targets)} targets met" + (f"; {cannot} cannot be met on this machine" if cannot else "")
          + f" ({len(bench.rows) - len(targets)} more rows shown for comparison)")
    if args.json:
        Path(args.json).write_text(json.dumps({"import_floor": floor, "bare_start": bench.startup,
                                               "rows": bench.rows}, indent=2))
    return 0 if met == len(targets) else 1


if __name__ == "__main__":
    sys.exit(main())
