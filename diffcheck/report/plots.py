"""Plots for the Markdown report (matplotlib, the ``plots`` extra).

For a case of one scalar variable, error ÷ allowed across its domain, per dtype (one panel
each) and per check and mode (one series each), with kinks, singular points and unstable
points marked; for every case whose results compared points, a histogram of error ÷ allowed
over the points of each result; for a gradient-descent claim, the exact and torch
trajectories with the claimed iterates.

Every plot is drawn from the results' :class:`~diffcheck.results.PlotData` (per-point data,
compact and rounded, that the JSON holds too), so the plots of ``diffcheck merge`` of shards
are those of a single run. Images are PNG files in ``DIR/plots/``, linked from the report.
They are the same bytes for the same results: matplotlib's own defaults (not the user's matplotlibrc), the Agg
canvas without pyplot (no global backend is changed), no timestamp or software name in the
file. Without matplotlib, :func:`plots_available` says which extra to install.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..results import HISTOGRAM_BINS_PER_DECADE, PLOT_FLOOR as FLOOR, WIDE_DOMAIN, CaseReport, Result

__all__ = ["plots_available", "case_plots", "MISSING_MESSAGE"]

MISSING_MESSAGE = ("Plots are not drawn: matplotlib is not installed "
                   "(install the `plots` extra: pip install 'diffcheck[plots]').")
DPI = 72
_MARKS = {"kink": ("|", "#1f77b4"), "singular": ("x", "#9467bd"), "undefined": ("x", "#7f7f7f"),
          "overflow": ("^", "#7f7f7f"), "unstable": ("v", "#d62728"), "raised": ("X", "#d62728")}


def plots_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    # fixed margins, the legend in the right one (a layout engine costs seconds a figure)
    fig.subplots_adjust(left=0.6 / width, right=1 - 1.9 / width, bottom=0.45 / height,
                        top=1 - 0.5 / height, wspace=0.08)
    return fig


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=DPI, metadata={"Software": None})


def _defaults():
    """matplotlib's own defaults, whatever the user's matplotlibrc says."""
    import matplotlib
    rc = {k: v for k, v in matplotlib.rcParamsDefault.items() if k not in ("backend", "backend_fallback")}
    rc.update({"font.size": 9, "axes.titlesize": 9, "legend.fontsize": 7, "svg.hashsalt": "diffcheck"})
    return matplotlib.rc_context(rc=rc)


def _label(r: Result) -> str:
    return " · ".join(str(p) for p in (r.check, r.mode) if p) if r.mode else r.check


def case_plots(case: CaseReport, directory: Path, stem: str, draw: bool = True) -> list[tuple[str, str]]:
    """Draw ``case``'s plots into ``directory`` and return ``(alt text, file name)`` pairs
    (names relative to ``directory``) in the order the report shows them. ``draw=False``:
    only the pairs (what a report links to), nothing drawn."""
    out: list[tuple[str, str]] = []
    with _defaults():
        domain = _domain_plot(case, directory, f"{stem}.domain.png", draw)
        if domain:
            out.append(domain)
        histogram = _histogram(case, directory, f"{stem}.ratios.png", draw)
        if histogram:
            out.append(histogram)
        out.extend(_descents(case, directory, stem, draw))
    return out


def _profiled(case: CaseReport) -> list[Result]:
    return [r for r in case.results if r.profile is not None]


def _wide(domain: tuple[float, float] | None) -> bool:
    return domain is not None and domain[1] - domain[0] > WIDE_DOMAIN


def _domain_plot(case: CaseReport, directory: Path, name: str, draw: bool) -> tuple[str, str] | None:
    results = [r for r in _profiled(case) if r.profile.x is not None]
    if not results:
        return None
    if not draw:
        return (f"{case.name}: error ÷ allowed across the domain", name)
    dtypes = list(dict.fromkeys(r.dtype for r in results))
    fig = _figure(3.2 * len(dtypes) + 0.6, 2.6)
    axes = fig.subplots(1, len(dtypes), sharey=True, squeeze=False)[0]
    top = max([1.0] + [max(r.profile.ratio) for r in results if r.profile.ratio])
    for ax, dtype in zip(axes, dtypes):
        for r in (r for r in results if r.dtype == dtype):
            p = r.profile
            x, y = np.asarray(p.x, dtype=float), np.maximum(np.asarray(p.ratio, dtype=float), FLOOR)
            ax.plot(x, y, marker="." if len(x) <= 200 else None, markersize=3, linewidth=0.7,
                    label=_label(r))
            for cls, (marker, color) in _MARKS.items():
                xs = p.marks.get(cls)
                if xs:
                    ax.plot(xs, np.full(len(xs), top * 2), linestyle="none", marker=marker,
                            color=color, markersize=6, label=cls)
            if p.unstable is not None:
                ax.axvspan(*p.unstable, color="#d62728", alpha=0.12, linewidth=0)
        for k in _kink_points(case, dtype):
            ax.axvline(k, color="#1f77b4", linestyle=":", linewidth=0.8)
        ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_yscale("log")
        ax.set_ylim(FLOOR / 2, top * 6)
        domain = next((r.profile.domain for r in results if r.profile.domain), None)
        if domain:
            ax.set_xlim(*_padded(domain))
            if _wide(domain):  # every finite float16: linear near 0, log beyond
                ax.set_xscale("symlog", linthresh=1.0)
                top_power = int(math.log10(max(abs(domain[0]), abs(domain[1]))))
                ticks = [10.0 ** k for k in range(0, top_power + 1, 2 if top_power < 8 else 10)]
                ax.set_xticks([-t for t in reversed(ticks)] + [0.0] + ticks)
        ax.set_title(dtype)
        ax.set_xlabel(results[0].profile.variable or "x")
        ax.grid(True, which="major", linewidth=0.3, alpha=0.5)
    axes[0].set_ylabel("error ÷ allowed")
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    for ax in axes[1:]:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            unique.setdefault(lab, h)
    fig.legend(list(unique.values()), list(unique.keys()), loc="upper right", bbox_to_anchor=(1.0, 1 - 0.45 / fig.get_figheight()), frameon=False)
    fig.suptitle(f"{case.name}: error ÷ allowed across the domain (dashed: allowed; "
                 f"at {FLOOR:g}: exact)", fontsize=9, x=0.01, ha="left")
    _save(fig, directory / name)
    return (f"{case.name}: error ÷ allowed across the domain", name)


def _padded(domain: tuple[float, float]) -> tuple[float, float]:
    lo, hi = domain
    pad = (hi - lo) * 0.03
    return lo - pad, hi + pad


def _kink_points(case: CaseReport, dtype: str) -> list[float]:
    found: set[float] = set()
    for r in case.results:
        if r.dtype != dtype:
            continue
        for k in r.details.kinks:
            values = [v for v in k.point.values() if isinstance(v, (int, float))]
            if len(values) == 1:
                found.add(float(values[0]))
    return sorted(found)


def _histogram(case: CaseReport, directory: Path, name: str, draw: bool) -> tuple[str, str] | None:
    """Each result's counts per bin of error ÷ allowed (PlotData.histogram) as a step line."""
    results = [r for r in _profiled(case) if r.profile.histogram[1]]
    if not results:
        return None
    if not draw:
        return (f"{case.name}: histogram of error ÷ allowed per result", name)
    b = HISTOGRAM_BINS_PER_DECADE
    lo = min(r.profile.histogram[0] for r in results)
    hi = max(r.profile.histogram[0] + len(r.profile.histogram[1]) for r in results)
    hi = max(hi, b // 2)  # the allowed line (1) and a little beyond are always in view
    edges = 10.0 ** (np.arange(lo, hi + 1) / b)
    dtypes = list(dict.fromkeys(r.dtype for r in results))
    fig = _figure(3.2 * len(dtypes) + 0.6, 2.4)
    axes = fig.subplots(1, len(dtypes), sharey=True, squeeze=False)[0]
    labels = list(dict.fromkeys(_label(r) for r in results))
    colors = {label: f"C{i % 10}" for i, label in enumerate(labels)}
    for ax, dtype in zip(axes, dtypes):
        for r in (r for r in results if r.dtype == dtype):
            first, counts = r.profile.histogram
            values = np.zeros(hi - lo)
            values[first - lo:first - lo + len(counts)] = counts
            ax.stairs(values, edges, linewidth=1.1, color=colors[_label(r)], label=_label(r))
        ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
        ax.set_xscale("log")
        ax.set_title(dtype)
        ax.set_xlabel("error ÷ allowed")
        ax.grid(True, which="major", linewidth=0.3, alpha=0.5)
    axes[0].set_ylabel("points")
    handles = {}
    for ax in axes:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            handles.setdefault(lab, h)
    fig.legend(list(handles.values()), list(handles.keys()), loc="upper right", bbox_to_anchor=(1.0, 1 - 0.45 / fig.get_figheight()), frameon=False)
    fig.suptitle(f"{case.name}: error ÷ allowed over the points of each result (dashed: allowed; "
                 f"at {FLOOR:g}: exact or below)", fontsize=9, x=0.01, ha="left")
    _save(fig, directory / name)
    return (f"{case.name}: histogram of error ÷ allowed per result", name)


def _descents(case: CaseReport, directory: Path, stem: str, draw: bool) -> list[tuple[str, str]]:
    out = []
    for index, r in enumerate(r for r in case.results if r.details.trajectory):
        steps = r.details.trajectory
        # sorted: the JSON sorts a mapping's keys, and a merged report must draw the same
        names = sorted({str(k) for s in steps for k in (s.exact or {})})
        if not names:
            continue
        name = f"{stem}.descent{index or ''}.png"
        if not draw:
            out.append((f"{case.name}: gradient descent, exact vs torch", name))
            continue
        fig = _figure(6.4, 2.6)
        ax = fig.subplots()
        for k, var in enumerate(names):
            color = f"C{k}"
            xs = [s.step for s in steps]
            ax.plot(xs, [_num((s.exact or {}).get(var)) for s in steps], color=color, linewidth=1.2,
                    label=f"{var}: exact")
            ax.plot(xs, [_num((s.torch or {}).get(var)) for s in steps], color=color, linewidth=1.0,
                    linestyle="--", marker=".", label=f"{var}: torch")
            claimed = [(s.step, _num(s.claimed.get(var))) for s in steps if s.claimed and var in s.claimed]
            if claimed:
                ax.plot(*zip(*claimed), color=color, linestyle="none", marker="o", fillstyle="none",
                        markersize=7, label=f"{var}: claimed")
        ax.set_xlabel("step")
        ax.set_ylabel("value")
        ax.set_title(f"{case.name}: gradient descent, exact vs torch")
        ax.legend(loc="best", frameon=False, ncols=len(names))
        ax.grid(True, linewidth=0.3, alpha=0.5)
        _save(fig, directory / name)
        out.append((f"{case.name}: gradient descent, exact vs torch", name))
    return out


def _num(value: Any) -> float:
    try:
        return float(Fraction(str(value))) if isinstance(value, str) else float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return float("nan")
