"""Where an instability lives: from one point where torch returns NaN/inf (while the exact
value is finite) and one where it does not, bisect to the boundary between them, in the
dtype's own numbers, and describe the region ("NaN for x ≤ -709.78271 in float64").

For a scalar variable the search runs along the real line and also towards the end of the
domain, so the region is an interval; for vector variables it runs along the segment between
the two points.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..points import round_to

Probe = Callable[[dict[str, np.ndarray]], np.ndarray]  # one point -> torch's values (n,)
MAX_STEPS = 80


def _nonfinite(values: np.ndarray) -> str | None:
    if np.isnan(values).any():
        return "NaN"
    if np.isinf(values).any():
        return "inf"
    return None


def _bisect(probe: Probe, name: str, a: np.ndarray, b: np.ndarray, dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """a is stable, b unstable: the closest such pair on the segment, in the dtype's numbers."""
    lo, hi = 0.0, 1.0
    for _ in range(MAX_STEPS):
        mid = (lo + hi) / 2
        pa = round_to(a + lo * (b - a), dtype)
        pb = round_to(a + hi * (b - a), dtype)
        pm = round_to(a + mid * (b - a), dtype)
        if np.array_equal(pm, pa) or np.array_equal(pm, pb):
            break
        if _nonfinite(probe({name: pm})):
            hi = mid
        else:
            lo = mid
    return round_to(a + lo * (b - a), dtype), round_to(a + hi * (b - a), dtype)


def describe_region(probe: Probe, name: str, stable: np.ndarray, unstable: np.ndarray,
                    domain: tuple[float, float], dtype: str) -> str | None:
    """A sentence naming the region of instability that contains ``unstable``."""
    kind = _nonfinite(probe({name: unstable}))
    if kind is None or _nonfinite(probe({name: stable})):
        return None
    _, first = _bisect(probe, name, stable, unstable, dtype)
    if stable.ndim == 0:
        x0, x1 = float(first), None
        going_down = float(unstable) < float(stable)
        end = np.array(domain[0] if going_down else domain[1])
        end = round_to(end, dtype)
        if _nonfinite(probe({name: end})):
            op = "≤" if going_down else "≥"
            return f"{kind} for {name} {op} {x0:.10g} in {dtype} (checked to the domain end {float(end):g})"
        _, last = _bisect(probe, name, end, unstable, dtype)
        x1 = float(last)
        lo_, hi_ = sorted((x0, x1))
        return f"{kind} for {name} in [{lo_:.10g}, {hi_:.10g}] in {dtype}"
    t_first = first.tolist()
    return (f"{kind} in {dtype} on the segment from {name} = {stable.tolist()} to {unstable.tolist()}, "
            f"from {name} = {t_first} on")
