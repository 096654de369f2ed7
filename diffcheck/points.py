"""The points a case is checked at: explicit ``points`` first, then seeded draws.

Draws come from numpy's PCG64 generator seeded with the case's ``seed`` (one place), so the
same files and seed give the same points. Every point is rounded to the dtype under test
before anything is evaluated: the exact reference is computed at exactly the input torch sees.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .case import Case
from .errors import CaseFileError

SIXTEEN_BIT = ("float16", "bfloat16")


@dataclass
class PointSet:
    """Points for one dtype: ``values[name]`` has shape (P, *shape) and holds float64 numbers
    that are exactly representable in the dtype."""

    values: dict[str, np.ndarray]
    count: int
    explicit: int  # how many came from the case's ``points``

    def with_kinks(self, locations: list[float], dtype: str) -> "PointSet":
        """These points plus one point per kink location (every element of the variable at the
        dtype's nearest value to the location) that no point holds yet. Whether a point is on
        or next to a boundary is decided by the reference (diffcheck.diagnostics.limits)."""
        if len(self.values) != 1 or not locations:
            return self
        (name, vals), = self.values.items()
        near = sorted({float(round_to(np.array(k), dtype)) for k in locations})
        flat = vals.reshape(self.count, -1)
        new = [k for k in near if not (flat == k).all(axis=1).any()]
        if not new:
            return self
        vals = np.concatenate([vals, np.stack([np.full(vals.shape[1:], k) for k in new])])
        return PointSet({name: vals}, len(vals), self.explicit)

    def point(self, i: int) -> dict:
        """Point ``i`` as plain numbers / nested lists (for reports)."""
        return {name: (v[i].item() if v[i].ndim == 0 else v[i].tolist()) for name, v in self.values.items()}

    def matrix(self) -> np.ndarray:
        """(P, total elements) in variable declaration order."""
        return np.concatenate([v.reshape(self.count, -1) for v in self.values.values()], axis=1) \
            if self.values else np.zeros((self.count, 0))


def torch_dtype(name: str) -> torch.dtype:
    return getattr(torch, name)


def round_to(values: np.ndarray, dtype: str) -> np.ndarray:
    """``values`` rounded to ``dtype`` (round to nearest even) and back to float64."""
    return torch.as_tensor(values, dtype=torch.float64).to(torch_dtype(dtype)).to(torch.float64).numpy()


def all_values(dtype: str, lo: float, hi: float) -> np.ndarray:
    """Every finite value of a 16-bit dtype inside [lo, hi], ascending."""
    bits = torch.arange(-(2 ** 15), 2 ** 15, dtype=torch.int32).to(torch.int16)
    vals = bits.view(torch_dtype(dtype)).to(torch.float64)
    vals = vals[torch.isfinite(vals) & (vals >= lo) & (vals <= hi)]
    vals = torch.unique(vals)  # +0 and -0 are one point
    return vals.numpy()


def validate_points(case: Case) -> None:
    """Explicit points must name every variable, with the right shape; there must be a point."""
    names = [v.name for v in case.variables]
    if not case.points and case.samples == 0:
        raise CaseFileError("`samples: 0` and no `points`: there is nothing to check", case.where("samples"),
                            "give `points:`, or a number of samples", case=case.name)
    for i, point in enumerate(case.points):
        where = case.where(f"points.{i}")
        missing = [n for n in names if n not in point]
        extra = [n for n in point if n not in names]
        if missing or extra:
            raise CaseFileError(f"point {i + 1} must give exactly the variables {names}"
                                + (f"; missing {missing}" if missing else "")
                                + (f"; unknown {extra}" if extra else ""), where, case=case.name)
        for v in case.variables:
            try:
                value = np.asarray(point[v.name], dtype=np.float64)
            except (ValueError, TypeError):
                raise CaseFileError(f"point {i + 1}: {v.name} is not a number or nested list of numbers",
                                    where, case=case.name) from None
            if value.shape != v.shape:
                raise CaseFileError(f"point {i + 1}: {v.name} has shape {list(value.shape)}, "
                                    f"the variable has shape {list(v.shape)}", where, case=case.name)
    if case.samples == "all":
        if len(case.variables) != 1 or case.variables[0].shape:
            raise CaseFileError("`samples: all` needs exactly one scalar variable", case.where("samples"),
                                case=case.name)
        wide = [d for d in case.dtypes if d not in SIXTEEN_BIT]
        if wide:
            raise CaseFileError(f"`samples: all` enumerates 16-bit dtypes only; {wide} has too many values",
                                case.where("samples"), "use a number of samples, or dtypes [float16, bfloat16]",
                                case=case.name)


def draw(case: Case, dtype: str, seed: int | None = None) -> PointSet:
    """The points of ``case`` for ``dtype``; ``seed`` overrides the case's seed."""
    explicit = {v.name: np.array([np.asarray(p[v.name], dtype=np.float64) for p in case.points]).reshape(
        (len(case.points),) + v.shape) for v in case.variables}
    if case.samples == "all":
        v = case.variables[0]
        drawn = {v.name: all_values(dtype, *v.domain)}
    else:
        rng = np.random.default_rng(case.seed if seed is None else seed)
        drawn = {v.name: rng.uniform(v.domain[0], v.domain[1], size=(int(case.samples),) + v.shape)
                 for v in case.variables}
    values = {name: round_to(np.concatenate([explicit[name], drawn[name]]), dtype) for name in explicit}
    count = len(case.points) + (len(next(iter(drawn.values()))) if drawn else 0)
    return PointSet(values, count, len(case.points))
