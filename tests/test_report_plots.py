"""The report's plots (matplotlib, the `plots` extra) and the committed report of cases/."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from diffcheck.report.markdown import (GENERATED_PREFIX, PAGE_CASES, PAGES_DIR, PLOTS_DIR, draw_plots, render_pages,
                                       write_markdown)
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
    """reports/ holds the report of cases/ as it is now: index.md and every page of files/
    (compared without the one Generated line), no page left over, every plot linked there.
    When this fails: `DIFFCHECK_SYMENGINE=0 python -m diffcheck run cases/ --no-cache --report reports/`."""
    from diffcheck.runner import RunOptions, run
    monkeypatch.chdir(ROOT)
    # SymPy alone and no derivation cache: SymEngine's derivative (the `fast` extra) and a formula
    # rebuilt from a cache entry print in other, equal forms (e^{x0} e^{x1} for e^{x0 + x1})
    monkeypatch.setenv("DIFFCHECK_SYMENGINE", "0")
    report = run(["cases/"], RunOptions(jobs=2, cache=False))
    pages = render_pages(report, "", "reports", draw_plots(report, "reports", draw=False))
    assert len(pages) > 1  # cases/ is split by file
    committed_pages = {"index.md"} | {f"{PAGES_DIR}/{p.name}" for p in (ROOT / "reports" / PAGES_DIR).glob("*.md")}
    assert committed_pages == set(pages), "reports/ is stale (pages added or gone); regenerate it"
    for name, expected in pages.items():
        committed = (ROOT / "reports" / name).read_text(encoding="utf-8")
        stale = [(a, b) for a, b in zip(_without_generated(expected), _without_generated(committed)) if a != b]
        assert not stale and len(_without_generated(expected)) == len(_without_generated(committed)), (
            f"reports/{name} is stale; regenerate it with `DIFFCHECK_SYMENGINE=0 python -m diffcheck run cases/ "
            f"--no-cache --report reports/`; first difference: {stale[:1]}")
        folder = (ROOT / "reports" / name).parent
        for target in re.findall(r"\]\(((?:\.\./)?" + PLOTS_DIR + r"/[^)]+)\)", committed):
            assert (folder / target).is_file(), (name, target)
        for target in re.findall(r"\]\(((?:\.\./)+cases/[^)#]+)", committed):  # file:line links
            assert (folder / target).is_file(), (name, target)
        assert len(committed.encode()) < 200_000, f"reports/{name} is {len(committed.encode())} bytes"


def _pages_report() -> RunReport:
    cases = []
    for i in range(PAGE_CASES + 1):
        file = f"cases/{'a' if i % 2 else 'sub/b'}.yaml"
        status = "fail" if i == 3 else "pass"
        r = Result(f"c{i}", file, "gradient", "reverse", "float64", status, points=4, ratio=2.0 if i == 3 else 0.1,
                   tolerance={"rtol": 1e-6, "atol": 0.0}, message="too far" if i == 3 else None)
        cases.append(CaseReport(f"c{i}", file, expr="x", results=[r], line=i + 1))
    return RunReport(results=[r for c in cases for r in c.results], cases=cases, versions={"diffcheck": "0"})


def test_a_big_report_is_one_page_per_case_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the case files' paths are relative to it
    report = _pages_report()
    index = write_markdown(report, tmp_path / "r", plots=False)
    pages = sorted(p.relative_to(tmp_path / "r").as_posix() for p in (tmp_path / "r").rglob("*.md"))
    assert pages == ["files/a.md", "files/sub-b.md", "index.md"]
    text = index.read_text()
    overview = text.split("## Overview", 1)[1]
    assert "| [`cases/a.yaml`](files/a.md) | 20 | 19 pass · 1 **fail** |" in overview
    assert "| [c3](files/a.md#case-c3) | **fail** |" in overview  # what did not plainly pass, linked
    assert "### c3" in text and "too far" in text  # failures expanded on the index too
    assert "c4" not in text  # a passing case only on its file's page
    page = (tmp_path / "r" / "files" / "sub-b.md").read_text()
    assert page.startswith("# cases/sub/b.yaml\n") and "](../index.md)" in page
    assert "[`cases/sub/b.yaml:5`](../../cases/sub/b.yaml#L5)" in page  # file:line from files/
    assert '<a id="case-c4"></a>\n<details>' in page
    # a smaller report is one page, as before; the pages of a bigger one left before are removed
    small = RunReport(results=report.results[:2], cases=report.cases[:2], versions={})
    write_markdown(small, tmp_path / "r", plots=False)
    assert not list((tmp_path / "r" / "files").glob("*.md"))


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
