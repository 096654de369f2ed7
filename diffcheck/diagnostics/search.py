"""``diffcheck run --search``: hunt inside the domain for a point where torch disagrees with
the exact derivative, and shrink it to the simplest such point.

Two stages, both deterministic for a seed:

1. a sweep: a dense batch of points (an even grid for one scalar variable, seeded draws
   otherwise), checked at once, finds regions where a bug hides between the sampled points;
2. Hypothesis (``hypothesis.find``) searches the domain, drawing near the sweep's failures
   when there are any, and shrinks the failing point it finds to the simplest one Hypothesis
   knows (fewest digits, closest to zero).

The result carries a ``points:`` line to paste into the case file to pin the point.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..case import Case
from ..points import round_to

SWEEP = 2048
MAX_EXAMPLES = 400
#: a variable with more elements than this is drawn from a seed Hypothesis chooses, not element
#: by element: Hypothesis cannot generate 1000 floats in one example (``Unsatisfiable``)
DRAWN_ELEMENTS = 64

# failing(points) -> boolean per point; points: name -> (k, *shape) float64 in the dtype
Checker = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class Found:
    point: dict
    yaml: str
    stage: str  # "sweep" or "hypothesis"

    def to_dict(self) -> dict:
        return {"point": self.point, "points_line": self.yaml, "stage": self.stage}


def _yaml_number(v: float) -> str:
    return repr(float(v)) if v != int(v) or abs(v) >= 1e16 else f"{float(v):.1f}"


def points_line(point: dict) -> str:
    def fmt(v):
        if isinstance(v, list):
            return "[" + ", ".join(fmt(x) for x in v) + "]"
        return _yaml_number(v)
    inner = ", ".join(f"{k}: {fmt(v)}" for k, v in point.items())
    return f"points: [{{{inner}}}]"


def _sweep_points(case: Case, dtype: str, seed: int) -> dict[str, np.ndarray]:
    if len(case.variables) == 1 and not case.variables[0].shape:
        v = case.variables[0]
        return {v.name: round_to(np.linspace(v.domain[0], v.domain[1], SWEEP), dtype)}
    rng = np.random.default_rng(seed + 1)
    return {v.name: round_to(rng.uniform(*v.domain, size=(SWEEP // 4,) + v.shape), dtype)
            for v in case.variables}


def hunt(case: Case, dtype: str, failing: Checker, seed: int = 0) -> Found | None:
    """The simplest failing point found, or None."""
    from hypothesis import HealthCheck, Phase, find, settings
    from hypothesis import strategies as st
    from hypothesis.errors import NoSuchExample, Unsatisfiable

    sweep = _sweep_points(case, dtype, seed)
    bad = failing(sweep)
    seeds = [{k: v[i] for k, v in sweep.items()} for i in np.flatnonzero(bad)[:64]]

    def near(p: dict):
        # floats drawn between bounds shrink towards the simplest number in them
        parts = {}
        for var in case.variables:
            lo, hi = var.domain
            width = 4 * (hi - lo) / SWEEP
            centre = np.asarray(p[var.name], dtype=float)
            if centre.size > DRAWN_ELEMENTS:
                parts[var.name] = st.integers(0, 2**32 - 1).map(
                    lambda s, c=centre, w=width, lo=lo, hi=hi: np.clip(
                        c + np.random.default_rng(s).uniform(-w, w, c.shape), lo, hi).tolist())
                continue
            elems = [st.floats(max(lo, c - width), min(hi, c + width)) for c in centre.ravel()]
            parts[var.name] = (st.tuples(*elems).map(lambda xs, s=centre.shape: np.reshape(xs, s).tolist())
                               if centre.shape else elems[0])
        return st.fixed_dictionaries(parts)

    def anywhere():
        parts = {}
        for var in case.variables:
            lo, hi = var.domain
            n = int(np.prod(var.shape, dtype=int)) if var.shape else 1
            f = st.floats(lo, hi, allow_nan=False, allow_infinity=False)
            if n > DRAWN_ELEMENTS:
                parts[var.name] = st.integers(0, 2**32 - 1).map(
                    lambda s, lo=lo, hi=hi, shape=var.shape: np.random.default_rng(s).uniform(lo, hi, shape).tolist())
                continue
            parts[var.name] = (st.lists(f, min_size=n, max_size=n).map(
                lambda xs, s=var.shape: np.reshape(xs, s).tolist()) if var.shape else f)
        return st.fixed_dictionaries(parts)

    strategy = st.one_of(st.sampled_from(seeds).flatmap(near), anywhere()) if seeds else anywhere()

    def condition(point: dict) -> bool:
        values = {v.name: round_to(np.asarray(point[v.name], dtype=float), dtype)[None] for v in case.variables}
        for v in case.variables:
            lo, hi = v.domain
            if (values[v.name] < lo).any() or (values[v.name] > hi).any():
                return False
        return bool(failing(values)[0])

    config = settings(max_examples=MAX_EXAMPLES, database=None, deadline=None, derandomize=False,
                      phases=[Phase.generate, Phase.shrink], suppress_health_check=list(HealthCheck),
                      report_multiple_bugs=False)
    try:
        found = find(strategy, condition, settings=config, random=random.Random(seed))
    except (NoSuchExample, Unsatisfiable):  # none found, or none Hypothesis could draw
        if not seeds:
            return None
        found, stage = {k: (v.tolist() if np.ndim(v) else float(v)) for k, v in seeds[0].items()}, "sweep"
        point = found
        return Found(point, points_line(point), stage)
    point = {v.name: (round_to(np.asarray(found[v.name], dtype=float), dtype).tolist()) for v in case.variables}
    return Found(point, points_line(point), "hypothesis")
