"""diffcheck's speed targets, each measured against its baseline in the same run.

    .venv/bin/python bench/run_bench.py            # everything (a few minutes)
    .venv/bin/python bench/run_bench.py --quick    # n = 64 only, fewer repeats

Every workload runs as its own process (``diffcheck run ... --no-cache`` with an empty
cache directory: cold), timed by wall clock, with its peak resident memory (``wait4``).
The baselines run in the same session on the same machine:

* the import floor: ``python -c "import torch, sympy"``;
* gradcheck (slow mode, float64) at the same 1000 points the softmax case draws, one call
  per point (gradcheck checks one input at a time): reverse mode only, and again with
  ``check_forward_ad=True`` (reverse and forward, as the case checks). The gradcheck time
  is measured inside its process, without its imports.

It prints one row per target: the measured time, the baseline, the ratio, the target and
whether it is met, and the peak memory. Nothing here runs under plain pytest.
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


def run(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of a child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    out = proc.stdout.read()
    err = proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd)} exited with {proc.returncode}:\n{err[-2000:]}")
    return wall, usage.ru_maxrss / 1024, out


def best(times: list[float]) -> float:
    return min(times)


class Bench:
    def __init__(self, quick: bool):
        self.quick = quick
        self.repeats = 1 if quick else 3
        self.work = Path(tempfile.mkdtemp(prefix="diffcheck-bench-"))
        self.rows: list[dict] = []

    def cold_env(self) -> dict:
        cache = Path(tempfile.mkdtemp(dir=self.work, prefix="cache-"))
        return {"DIFFCHECK_CACHE_DIR": str(cache)}

    def diffcheck(self, path: Path, *extra: str, env: dict | None = None) -> tuple[float, float, dict]:
        report = self.work / "report.json"
        wall, peak, _ = run(DIFFCHECK + ["run", str(path), "-q", "--json", str(report), *extra],
                            env=env or self.cold_env())
        return wall, peak, json.loads(report.read_text())

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        path.write_text(text)
        return path

    def row(self, workload: str, seconds: float, baseline: float, baseline_name: str, target: str,
            met: bool, peak: float | None = None, note: str = "", kind: str = "speedup") -> None:
        """One target: ``kind`` "speedup" shows baseline/time, "floor" time/baseline,
        "absolute" the time itself against the target."""
        ratio = baseline / seconds if kind == "speedup" else seconds / baseline if kind == "floor" else seconds
        self.rows.append({"workload": workload, "seconds": seconds, "baseline": baseline,
                          "baseline_name": baseline_name, "ratio": ratio, "kind": kind,
                          "target": target, "met": met, "peak_mb": peak, "note": note})
        shown = {"speedup": f"{baseline_name} / this = {ratio:5.2f}x",
                 "floor": f"this / {baseline_name} = {ratio:5.2f}x",
                 "absolute": f"{'':>26}"}[kind]
        peak_text = f"peak {peak:5.0f} MB" if peak is not None else " " * 13
        print(f"[{'MET ' if met else 'MISS'}] {workload:46} {seconds:7.2f} s   {shown:34} target {target:12} "
              f"{peak_text}  {note}", flush=True)

    # -- baselines ---------------------------------------------------------------------------
    def import_floor(self) -> float:
        times = [run([PYTHON, "-c", "import torch, sympy"])[0] for _ in range(self.repeats + 1)]
        floor = statistics.median(times[1:]) if len(times) > 2 else min(times)
        print(f"import floor (python -c 'import torch, sympy'): {floor:.2f} s  (runs: "
              f"{', '.join(f'{t:.2f}' for t in times)})", flush=True)
        return floor

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
        walls, peaks = [], []
        for _ in range(self.repeats):
            wall, peak, report = self.diffcheck(case)
            walls.append(wall)
            peaks.append(peak)
        wall, peak = best(walls), max(peaks)
        in_run = self.inside(case)
        self.row(f"softmax n={n}: process, cold cache", wall, g_rev, "gradcheck(rev)",
                 f">={factor:g}x <1GB", g_rev / wall >= factor and peak < 1024, peak)
        self.row(f"softmax n={n}: process, cold cache", wall, g_both, "gradcheck(rev+fwd)",
                 f">={factor:g}x <1GB", g_both / wall >= factor and peak < 1024, peak)
        work = max(wall - floor, 1e-9)
        self.row(f"softmax n={n}: process minus the import floor", work, g_both, "gradcheck(rev+fwd)",
                 f">={factor:g}x", g_both / work >= factor, None)
        self.row(f"softmax n={n}: runner.run() once imported", in_run, g_both, "gradcheck(rev+fwd)",
                 f">={factor:g}x", g_both / in_run >= factor, None, "includes torch's lazy imports (1 s)")

    def float16(self, floor: float) -> None:
        case = self.write("every_float16.yaml", FLOAT16)
        walls, peaks = [], []
        for _ in range(self.repeats):
            wall, peak, report = self.diffcheck(case)
            walls.append(wall)
            peaks.append(peak)
        wall = best(walls)
        self.row("every float16 input of sigmoid and tanh", wall, floor, "floor", "<= 3x",
                 wall <= 3 * floor, max(peaks), f"{_points(report)} points, reference included", kind="floor")

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
        self.row("gradient, 1024 variables, 100 points: process", wall, 2.0, "2 s", "<= 2 s",
                 wall <= 2.0, max(peaks), "the whole process, imports included", kind="absolute")

    def suite(self, floor: float) -> None:
        """The whole suite: as `diffcheck run cases/` runs by default (-j auto, one worker per
        CPU) and in one process (-j 1), each cold and warm."""
        cases = ROOT / "cases"
        jobs = _auto_jobs()
        auto_env = self.cold_env()
        cold, peak, report = self.diffcheck(cases, env=auto_env)
        warm, warm_peak, _ = self.diffcheck(cases, env=auto_env)
        one_env = self.cold_env()
        cold1, peak1, _ = self.diffcheck(cases, "-j", "1", env=one_env)
        warm1, warm_peak1, _ = self.diffcheck(cases, "-j", "1", env=one_env)
        self.row(f"diffcheck run cases/ (-j auto = {jobs}), cold cache", cold, floor, "floor", "<= 2.5x",
                 cold <= 2.5 * floor, peak, f"{len(report['results'])} results; {cold1 / cold:.2f}x faster than -j 1",
                 kind="floor")
        self.row(f"diffcheck run cases/ (-j auto = {jobs}), warm cache", warm, floor, "floor", "<= 2.5x",
                 warm <= 2.5 * floor, warm_peak, f"{warm1 / warm:.2f}x faster than -j 1", kind="floor")
        self.row("diffcheck run cases/ -j 1, cold cache", cold1, floor, "floor", "<= 2.5x",
                 cold1 <= 2.5 * floor, peak1, "one process", kind="floor")
        self.row("diffcheck run cases/ -j 1, warm cache", warm1, floor, "floor", "<= 2.5x",
                 warm1 <= 2.5 * floor, warm_peak1, "one process", kind="floor")

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
        bench.float16(floor)
        bench.gradient()
        bench.softmax(64, 10, floor)
        if not args.quick:
            bench.softmax(128, 5, floor)
        bench.suite(floor)
    finally:
        bench.close()
    met = sum(r["met"] for r in bench.rows)
    print(f"\n{met} of {len(bench.rows)} rows meet their target")
    if args.json:
        Path(args.json).write_text(json.dumps({"import_floor": floor, "rows": bench.rows}, indent=2))
    return 0 if met == len(bench.rows) else 1


if __name__ == "__main__":
    sys.exit(main())
