"""Write docs/soundness.md: diffcheck beside torch.autograd.gradcheck/gradgradcheck on the
soundness corpus (tests/soundness/: real PyTorch autograd bugs and their correct controls).

    python tools/soundness.py            # from the repository root; writes docs/soundness.md
    python tools/soundness.py --out -    # print instead
    python tools/soundness.py -j 2       # two processes (about 45 min with one, here)

Every number in the page is measured by this run:

* **points given**: diffcheck checks each case as written (its explicit points, its
  samples, its dtypes and modes); gradcheck checks the same function at the same points in
  float64: ``gradcheck`` (with ``check_forward_ad=True`` when the case lists forward mode,
  ``check_backward_ad`` when it lists reverse or backward), plus ``gradgradcheck`` when the
  case checks a Hessian or a higher derivative.
* **blind**: the explicit points are removed and the default number of samples is drawn
  (32); diffcheck runs as is, then with ``--search``; gradcheck runs at diffcheck's sampled
  points.

A bug is *caught* when some result fails (diffcheck) or when gradcheck raises or returns
False at some point. A control raises a *false alarm* the same way.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
from torch.autograd.gradcheck import GradcheckError  # noqa: E402

from diffcheck import check_case  # noqa: E402
from diffcheck.autograd import Torchside  # noqa: E402
from diffcheck.case import DEFAULT_SAMPLES  # noqa: E402
from diffcheck.loader import load_text  # noqa: E402
from diffcheck.pipeline import CheckOptions, prepare  # noqa: E402
from diffcheck.points import PointSet, draw  # noqa: E402
from diffcheck.results import FAILING  # noqa: E402
from tools.search_alarms import TRUE_ALARMS, true_alarm  # noqa: E402

CORPUS = ROOT / "tests" / "soundness"


def load_corpus():
    cases = []
    for name in ("bugs.yaml", "controls.yaml"):
        path = CORPUS / name
        loaded, errors = load_text(path.read_text(), str(path.relative_to(ROOT)))
        if errors:
            raise SystemExit(f"{path}: {errors}")
        # the corpus's bug modules are this project's own code: its imports are allowed
        cases.extend(dataclasses.replace(c, allow_imports=True) for c in loaded)
    return cases


def diffcheck_verdict(case, search: bool = False) -> tuple[bool, str]:
    """(flagged, the first failing result's summary). A control flagged only in the check of a
    torch defect pinned in tests/data/cases/search.yaml (tools/search_alarms.py's TRUE_ALARMS)
    has a summary starting with "true alarm"."""
    report = check_case(case, CheckOptions(search=search, allow_imports=True))  # its own bug modules
    bad = [r for r in report.results if r.status in FAILING]
    if not bad:
        return False, "pass"
    r = bad[0]
    what = f"{r.status} ({r.check}/{r.mode or 'value'}/{r.dtype})"
    if not case.name.startswith("bug.") and true_alarm(case.name, {b.check for b in bad}):
        pinned = ", ".join(f"`{f}`" for f in sorted({TRUE_ALARMS[case.name][b.check] for b in bad}))
        return True, f"true alarm: torch 2.13's defect pinned as {pinned}, {what}"
    return True, what


def _true(verdict) -> bool:
    return verdict[0] and verdict[1].startswith("true alarm")


def _points(case) -> PointSet:
    return draw(case, "float64", None)


def gradcheck_verdict(case) -> tuple[bool, str]:
    """gradcheck (and gradgradcheck for second derivatives) in float64 at the case's points."""
    compiled = prepare(case)
    points = _points(case)
    side = Torchside(compiled, "float64", points)
    checks = {c.kind for c in compiled.checks}
    orders = [c.order for c in compiled.checks if c.kind == "derivative"]
    second = "hessian" in checks or any(o >= 2 for o in orders)
    forward = "forward" in case.modes
    backward = any(m in case.modes for m in ("reverse", "backward"))
    for i in range(points.count):
        inputs = tuple(torch.tensor(points.values[v.name][i], dtype=torch.float64).requires_grad_(True)
                       for v in case.variables)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                ok = torch.autograd.gradcheck(side.f, inputs, check_forward_ad=forward,
                                              check_backward_ad=backward or not forward,
                                              check_undefined_grad=False, check_batched_grad=False)
                if ok and second:
                    ok = torch.autograd.gradgradcheck(
                        side.f, inputs, check_fwd_over_rev=forward, check_rev_over_rev=backward or not forward,
                        check_undefined_grad=False, check_batched_grad=False)
        except GradcheckError as err:
            return True, f"mismatch at point {i}: {str(err).splitlines()[0][:80]}"
        except Exception as err:  # a refusal or an error stops the user's test too
            return True, f"raised at point {i}: {type(err).__name__}: {str(err).splitlines()[0][:60]}"
        if not ok:
            return True, f"returned False at point {i}"
    return False, "pass"


def blind(case):
    return dataclasses.replace(case, points=(), samples=DEFAULT_SAMPLES)


def issue_of(case) -> str:
    text = case.description or ""
    if text.startswith("control of "):
        text = text[len("control of "):]
    head = text.split()[0] if text else ""
    return head if head.startswith("pytorch/pytorch#") else ""


def measure_one(case) -> dict:
    """Every column's verdict for one case (a row of the page)."""
    start = time.perf_counter()
    row = {"case": case, "kind": "bug" if case.name.startswith("bug.") else "control",
           "issue": issue_of(case)}
    row["diffcheck"] = diffcheck_verdict(case)
    row["gradcheck"] = gradcheck_verdict(case)
    b = blind(case)
    row["blind"] = diffcheck_verdict(b)
    row["blind_search"] = diffcheck_verdict(b, search=True)
    row["gradcheck_blind"] = gradcheck_verdict(b)
    row["seconds"] = time.perf_counter() - start
    return row


def measure(cases, progress=True, jobs: int = 1):
    """The rows of ``cases``, in their order; ``jobs`` > 1 measures cases in that many
    processes (each case on its own, so the verdicts are the same as with one)."""
    rows = []
    if jobs > 1:
        import multiprocessing
        pool = multiprocessing.get_context("fork").Pool(jobs, maxtasksperchild=4)
        found = pool.imap(measure_one, cases)
    else:
        pool, found = None, map(measure_one, cases)
    try:
        for n, row in enumerate(found, 1):
            rows.append(row)
            if progress:
                print(f"[{n}/{len(cases)}] {row['case'].name}: " + ", ".join(
                    f"{k}={'TRUE' if _true(row[k]) else 'FLAG' if row[k][0] else 'ok'}" for k in
                    ("diffcheck", "gradcheck", "blind", "blind_search", "gradcheck_blind")) +
                    f" ({row['seconds']:.1f} s)", file=sys.stderr, flush=True)
    finally:
        if pool is not None:
            pool.close()
            pool.join()
    return rows


COLUMNS = [("diffcheck", "diffcheck, points given"), ("gradcheck", "gradcheck + gradgradcheck, same points"),
           ("blind", "diffcheck blind"), ("blind_search", "diffcheck blind + `--search`"),
           ("gradcheck_blind", "gradcheck blind (diffcheck's sampled points)")]


def render(rows, seconds: float) -> str:
    bugs = [r for r in rows if r["kind"] == "bug"]
    controls = [r for r in rows if r["kind"] == "control"]
    out = ["# Soundness: diffcheck and gradcheck on real PyTorch autograd bugs", "",
           "Generated by `python tools/soundness.py` (do not edit by hand). "
           f"torch {torch.__version__}, Python {platform.python_version()}, "
           f"{len(bugs)} bugs and {len(controls)} controls, measured in {seconds:.0f} s.", "",
           "The corpus is `tests/soundness/`: every bug is a real, filed PyTorch autograd bug, "
           "re-created as a small custom `torch.autograd.Function` with the buggy formula or as the "
           "torch code of the issue (torch 2.13 still has some of them), and cites its issue in "
           "`bugs.py`. Every bug has a control: the fixed formula, torch's now-correct op, or the "
           "same torch code in the modes where it is right. The other controls are correct composed "
           "code at its branch boundaries, in its tails and at its thresholds. "
           "`tests/test_soundness_corpus.py` asserts each verdict; today's misses are strict xfails "
           "naming the mechanism they wait for.", "",
           "A bug is **caught** when a result fails (diffcheck: `fail`, `unstable`, `error`, "
           "`not_differentiable`) or gradcheck raises or returns False at some point. On a control, "
           "the same is a **false alarm**. gradcheck runs in float64 with its default tolerances, "
           "`check_forward_ad=True` when the case lists forward mode, and `gradgradcheck` when the "
           "case checks a second derivative.", "",
           "## Summary", "",
           "| checker | bugs caught | false alarms on controls | true alarms on controls |",
           "| --- | --- | --- | --- |"]
    for key, label in COLUMNS:
        caught = sum(r[key][0] for r in bugs)
        alarms = sum(r[key][0] and not _true(r[key]) for r in controls)
        true = sum(_true(r[key]) for r in controls)
        out.append(f"| {label} | {caught} of {len(bugs)} | {alarms} of {len(controls)} | {true} |")
    out += ["", "A **true alarm** on a control: `--search` finds torch 2.13's own op wrong at an input the "
            "control does not list, in the check where that defect is, and nowhere else; each such defect "
            "is pinned at a point that shows it as a planted bug in `tests/data/cases/search.yaml` "
            "(which must fail) and named in `tools/search_alarms.py`."]
    out += ["", "## Bugs", "", "| case | issue | diffcheck | gradcheck | blind | blind + search | gradcheck blind |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    out += [_row(r) for r in bugs]
    out += ["", "## Controls", "", "| case | of | diffcheck | gradcheck | blind | blind + search | gradcheck blind |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    out += [_row(r) for r in controls]
    out += ["", "## Where a checker is wrong", ""]
    for r in rows:
        wrong = [label for key, label in COLUMNS if r[key][0] != (r["kind"] == "bug") and not _true(r[key])]
        if wrong:
            what = "misses" if r["kind"] == "bug" else "false alarm"
            details = "; ".join(f"{label}: {r[key][1]}" for key, label in COLUMNS
                                if r[key][0] != (r["kind"] == "bug") and not _true(r[key]))
            out.append(f"- `{r['case'].name}` ({what}): {details}")
    out.append("")
    return "\n".join(out)


def _cell(verdict, kind) -> str:
    flagged, text = verdict
    if kind != "bug" and _true(verdict):
        return text.replace("true alarm: ", "**true alarm**: ", 1)
    right = flagged == (kind == "bug")
    mark = ("caught" if flagged else "**missed**") if kind == "bug" else ("**false alarm**" if flagged else "pass")
    return mark if right or not flagged else f"{mark}: {text}"


def _row(r) -> str:
    link = r["issue"]
    if link:
        num = link.split("#")[1]
        link = f"[#{num}](https://github.com/pytorch/pytorch/issues/{num})"
    return (f"| `{r['case'].name}` | {link} | " +
            " | ".join(_cell(r[key], r["kind"]) for key, _ in COLUMNS) + " |")


def rows_from_log(path: Path, cases) -> list[dict]:
    """The rows of an earlier run, from its progress lines on stderr
    (``[i/N] NAME: diffcheck=FLAG, gradcheck=ok, … (S s)``): verdicts only, no details."""
    import re
    by_name = {c.name: c for c in cases}
    rows = []
    for line in path.read_text().splitlines():
        m = re.match(r"\[\d+/\d+\] (\S+): (.*) \(([\d.]+) s\)$", line)
        if not m or m.group(1) not in by_name:
            continue
        case = by_name[m.group(1)]
        flags = dict(part.split("=") for part in m.group(2).split(", "))
        row = {"case": case, "kind": "bug" if case.name.startswith("bug.") else "control",
               "issue": issue_of(case), "seconds": float(m.group(3))}
        for key, _ in COLUMNS:
            row[key] = ((True, "true alarm: see the run's log") if flags[key] == "TRUE"
                        else (flags[key] == "FLAG", "see the run's log"))
        rows.append(row)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "soundness.md"), help="file to write, or - for stdout")
    parser.add_argument("-k", default="", help="only cases whose name contains this")
    parser.add_argument("--from-log", help="render the verdicts of an earlier run's stderr instead of measuring")
    parser.add_argument("--note", default="", help="a paragraph to add under the title (e.g. the code measured)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="measure cases in this many processes")
    args = parser.parse_args(argv)
    cases = [c for c in load_corpus() if args.k in c.name]
    start = time.perf_counter()
    if args.from_log:
        rows = rows_from_log(Path(args.from_log), cases)
        missing = [c.name for c in cases if c.name not in {r["case"].name for r in rows}]
        text = render(rows, sum(r["seconds"] for r in rows))
        if missing:
            text += ("\n## Not measured in this run\n\n" + "\n".join(f"- `{n}`" for n in missing) + "\n")
    else:
        rows = measure(cases, jobs=args.jobs)
        text = render(rows, time.perf_counter() - start)
    if args.note:
        title, _, rest = text.partition("\n\n")
        text = f"{title}\n\n{args.note}\n\n{rest}"
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
