"""Measure ``--search`` alone: every control and bug of the soundness corpus
(tests/soundness/) and of the planted cases (tests/data/cases/), checked blind (explicit
points removed, the default 32 samples) with ``--search``, as the "blind + --search" column
of tools/soundness.py, without its gradcheck columns.

    python tools/search_alarms.py                 # all, one process
    python tools/search_alarms.py -j 2 -k softmax # two workers, names containing softmax

A control is a false alarm when some result fails; a bug is caught the same way. Prints one
line per case and the totals.
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from diffcheck import check_case  # noqa: E402
from diffcheck.case import DEFAULT_SAMPLES  # noqa: E402
from diffcheck.loader import load_file  # noqa: E402
from diffcheck.pipeline import CheckOptions  # noqa: E402
from diffcheck.results import FAILING  # noqa: E402

FILES = [ROOT / "tests" / "soundness" / "bugs.yaml", ROOT / "tests" / "soundness" / "controls.yaml",
         *sorted((ROOT / "tests" / "data" / "cases").glob("*.yaml"))]


#: controls whose code ``--search`` shows wrong at inputs they do not list: torch 2.13's own
#: defects, each pinned as a planted bug in tests/data/cases/search.yaml (which must fail), by the
#: check the defect is in. A flag of such a control in those checks only is a true alarm; a flag
#: in any other check is still a false alarm (tools/soundness.py, tests/test_search_controls.py).
TRUE_ALARMS = {
    "control.prod_double_backward_two_zeros.torch": {"hessian": "finding.torch_prod_hessian_small_factor"},
    "control.cumprod_sum_hessian_near_zero": {"hessian": "finding.torch_cumprod_hessian_small_factor"},
    "control.torch_cumprod_nested_jvp_zero_factor.cumprod_of_t": {
        "derivative2": "finding.torch_cumprod_hessian_small_factor"},
    "control.det_near_singular_hessian": {"gradient": "finding.torch_det_gradient_rank_deficient",
                                          "hessian": "finding.torch_det_hessian_zero_matrix"},
    # torch.det itself near singular matrices (tests/data/cases/tolerance.yaml): the search goes on
    # to singular ones (2×2 [[0, 0], [0, 1]], 3×3 diag(0, 1, 1): gradient 0, pytorch#104675)
    "tol.torch_det_near_singular": {"gradient": "finding.torch_det_gradient_rank_deficient",
                                    "hessian": "finding.torch_det_hessian_zero_matrix"},
    "tol.torch_det3_near_singular": {"gradient": "finding.torch_det_gradient_rank_deficient",
                                     "hessian": "finding.torch_det_hessian_zero_matrix"},
    # torch.prod's own Hessian at small factors: the search goes on to a factor of 1e-127
    "tol.torch_prod_hessian_small_factor": {"hessian": "finding.torch_prod_hessian_small_factor"},
}


def cases(pattern: str = ""):
    out = []
    for path in FILES:
        loaded, problems = load_file(path)
        if problems:
            raise SystemExit(f"{path}: {problems}")
        out += [c for c in loaded if pattern in c.name]
    return out


def is_bug(case) -> bool:
    return case.name.startswith("bug.") or bool(case.xfail)


def blind(case):
    return dataclasses.replace(case, points=(), samples=DEFAULT_SAMPLES, xfail=None)


def verdict(case) -> tuple[str, bool, bool, str, float]:
    """(name, is a bug, flagged, the first failing result, seconds). A control flagged only in
    the check of its pinned torch defect (:data:`TRUE_ALARMS`) has ``what`` start with "true alarm"."""
    start = time.perf_counter()
    report = check_case(blind(case), CheckOptions(search=True, allow_imports=True))
    bad = [r for r in report.results if r.status in FAILING]
    what = "" if not bad else f"{bad[0].status} {bad[0].check}/{bad[0].mode}/{bad[0].dtype}: {(bad[0].message or '')[:300]}"
    if bad and true_alarm(case.name, {r.check for r in bad}):
        what = f"true alarm ({', '.join(sorted({TRUE_ALARMS[case.name][r.check] for r in bad}))}): {what}"
    return case.name, is_bug(case), bool(bad), what, time.perf_counter() - start


def true_alarm(name: str, failing_checks: set[str]) -> bool:
    """Whether a control flagged in ``failing_checks`` is flagged for its pinned torch defect only."""
    return name in TRUE_ALARMS and bool(failing_checks) and failing_checks <= set(TRUE_ALARMS[name])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("-j", "--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    todo = cases(args.k)
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            rows = pool.map(verdict, todo, chunksize=1)
    else:
        rows = [verdict(c) for c in todo]
    for name, bug, flagged, what, seconds in rows:
        mark = (("caught" if flagged else "MISSED") if bug else
                "TRUE ALARM" if what.startswith("true alarm") else ("FALSE ALARM" if flagged else "pass"))
        print(f"{mark:12} {name} ({seconds:.1f} s) {what}")
    bugs = [r for r in rows if r[1]]
    controls = [r for r in rows if not r[1]]
    print(f"bugs caught {sum(r[2] for r in bugs)} of {len(bugs)}; "
          f"false alarms {sum(r[2] and not r[3].startswith('true alarm') for r in controls)} of {len(controls)}; "
          f"true alarms (pinned torch defects) {sum(r[3].startswith('true alarm') for r in controls)}; "
          f"{sum(r[4] for r in rows):.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
