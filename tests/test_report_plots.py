"""The report's plots (matplotlib, the `plots` extra) and the committed report of cases/."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from diffcheck.report.markdown import GENERATED_PREFIX, PLOTS_DIR, draw_plots, render_markdown, write_markdown
from diffcheck.results import CaseReport, DescentStep, Details, PointProfile, Result, RunReport

ROOT = Path(__file__).resolve().parent.parent


def _report() -> RunReport:
    x = np.linspace(-5, 5, 41)
    ratio = np.abs(np.sin(x)).astype(np.float32)
    classes = np.array(["pass"] * 41, dtype=object)
    classes[20] = "kink"
    results = [Result("sig", "cases/s.yaml", "gradient", mode, dtype, "pass", points=41, ratio=float(ratio.max()),
                      tolerance={"rtol": 1e-6, "atol": 1e-6},
                      profile=PointProfile(ratio=ratio * k, classes=classes, x=x, variable="x", domain=(-5.0, 5.0)))
               for k, (mode, dtype) in enumerate([("reverse", "float64"), ("forward", "float32")], start=1)]
    results.append(Result("sig", "cases/s.yaml", "expect.descent", None, None, "pass", details=Details(trajectory=(
        DescentStep(1, {"w": 1}, {"w": 1}, {"w": 1.0}, True), DescentStep(2, None, {"w": "3/2"}, {"w": 1.5}, None)))))
    case = CaseReport("sig", "cases/s.yaml", expr="sigmoid(x)", results=results, line=3)
    return RunReport(results=list(results), cases=[case], versions={"diffcheck": "0"})


def test_plots_are_drawn_linked_and_deterministic(tmp_path):
    pytest.importorskip("matplotlib")
    first = write_markdown(_report(), tmp_path / "a").read_text()
    write_markdown(_report(), tmp_path / "b")
    names = sorted(p.name for p in (tmp_path / "a" / PLOTS_DIR).iterdir())
    assert names == ["sig.descent.png", "sig.domain.png", "sig.ratios.png"]
    for name in names:
        assert f"]({PLOTS_DIR}/{name})" in first
        a = (tmp_path / "a" / PLOTS_DIR / name).read_bytes()
        b = (tmp_path / "b" / PLOTS_DIR / name).read_bytes()
        assert a == b and a.startswith(b"\x89PNG")
        assert b"matplotlib" not in a and b"Software" not in a  # no tool name or version in the file


def test_without_matplotlib_one_line_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib raises ImportError
    text = write_markdown(_report(), tmp_path).read_text()
    notes = [line for line in text.splitlines() if "matplotlib" in line]
    assert len(notes) == 1 and "`plots` extra" in notes[0]
    assert not (tmp_path / PLOTS_DIR).exists()


def _without_generated(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.startswith(GENERATED_PREFIX)]


@pytest.mark.slow
def test_the_committed_report_of_cases_is_current(monkeypatch):
    """reports/index.md is the report of cases/ as it is now (compared without its one
    Generated line). When this fails: `DIFFCHECK_SYMENGINE=0 python -m diffcheck run cases/ --no-cache --report reports/`."""
    from diffcheck.runner import RunOptions, run
    monkeypatch.chdir(ROOT)
    # SymPy alone and no derivation cache: SymEngine's derivative (the `fast` extra) and a formula
    # rebuilt from a cache entry print in other, equal forms (e^{x0} e^{x1} for e^{x0 + x1})
    monkeypatch.setenv("DIFFCHECK_SYMENGINE", "0")
    report = run(["cases/"], RunOptions(jobs=2, cache=False))
    expected = render_markdown(report, "", "reports", draw_plots(report, "reports", draw=False))
    committed = (ROOT / "reports" / "index.md").read_text(encoding="utf-8")
    stale = [(a, b) for a, b in zip(_without_generated(expected), _without_generated(committed)) if a != b]
    assert not stale and len(_without_generated(expected)) == len(_without_generated(committed)), (
        "reports/ is stale; regenerate it with `DIFFCHECK_SYMENGINE=0 python -m diffcheck run cases/ --no-cache --report reports/`; "
        f"first difference: {stale[:1]}")
    for name in re.findall(rf"\]\({PLOTS_DIR}/([^)]+)\)", committed):
        assert (ROOT / "reports" / PLOTS_DIR / name).is_file(), name


def test_plot_data_is_compact_and_reads_back_the_same():
    """What the JSON holds of a result's points: the histogram counts every finite ratio, a
    long series is kept as its envelope (the worst point kept), and it reads back equal."""
    from diffcheck.results import SERIES_CAP, PlotData
    x = np.linspace(-3, 3, 5001)
    ratio = (np.abs(x) / 3).astype(np.float32)
    ratio[7] = np.nan
    classes = np.array(["pass"] * 5001, dtype=object)
    classes[[10, 20]] = "unstable"
    data = PlotData.of(PointProfile(ratio=ratio, classes=classes, x=x, variable="x", domain=(-3.0, 3.0)))
    assert sum(data.histogram[1]) == 5000
    assert data.envelope and len(data.x) <= SERIES_CAP and max(data.ratio) == 1.0
    assert data.marks["unstable"] == (float(x[10]), float(x[20])) and data.unstable == (float(x[10]), float(x[20]))
    assert PlotData.from_dict(json.loads(json.dumps(data.to_dict()))) == data
    several = PlotData.of(PointProfile(ratio=ratio[:40], classes=classes[:40]))
    assert several.x is None and several.to_dict() == {"histogram": {"first": several.histogram[0],
                                                                     "counts": list(several.histogram[1])}}
