"""Reference values: exact expressions evaluated at points, correctly to float64.

Every expression is lambdified (with common-subexpression elimination) for mpmath and
evaluated in arbitrary precision: exp(1000) and σ'(-800) hold no terrors there. Each point is
evaluated at two working precisions; where the two disagree beyond 1e-25 relative, the
point is evaluated again with more digits, so a cancellation deeper than the working
precision is caught rather than trusted. The result is rounded once to float64.

A value that is infinite is reported as ±inf (kind POS_INF/NEG_INF); a value that is
undefined (0/0, a complex result, a function outside its domain) as UNDEFINED. Neither is
ever silently dropped.
"""

from __future__ import annotations

from typing import Sequence

import mpmath
import numpy as np
import sympy as sp

from .compare import FINITE, NEG_INF, POS_INF, UNDEFINED

WORK_DPS = (30, 45)
MAX_DPS = 400
AGREE = mpmath.mpf("1e-25")


def _dirac(x, *order):
    # DiracDelta appears in derivatives of kinks: 0 away from the kink, undefined at it.
    return mpmath.mpf(0) if x != 0 else mpmath.nan


def _heaviside(x, h0=0.5):
    if x > 0:
        return mpmath.mpf(1)
    if x < 0:
        return mpmath.mpf(0)
    return mpmath.mpf(h0)


def _sign(x):
    return mpmath.mpf(mpmath.sign(x))


_MODULES = [{"DiracDelta": _dirac, "Heaviside": _heaviside, "sign": _sign}, "mpmath"]


class Evaluator:
    """Evaluate a list of SymPy expressions of ``symbols`` at many points."""

    def __init__(self, exprs: Sequence[sp.Expr], symbols: Sequence[sp.Symbol]):
        self.exprs = list(exprs)
        self.symbols = list(symbols)
        self._fn = sp.lambdify(self.symbols, self.exprs, modules=_MODULES, cse=True)

    def __call__(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``values``: (P, len(symbols)) float64, each exactly the input torch sees.
        Returns (reference (P, n) float64, kinds (P, n) int8)."""
        p = values.shape[0]
        out = np.zeros((p, len(self.exprs)))
        kinds = np.full((p, len(self.exprs)), FINITE, dtype=np.int8)
        for i in range(p):
            out[i], kinds[i] = self._point(values[i])
        return out, kinds

    def _eval(self, row: np.ndarray, dps: int) -> list:
        with mpmath.workdps(dps):
            args = [mpmath.mpf(float(v)) for v in row]
            try:
                result = self._fn(*args)
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                return [None] * len(self.exprs)
            return [_as_mp(r) for r in result]

    def _point(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = self._eval(row, WORK_DPS[0])
        hi = self._eval(row, WORK_DPS[1])
        dps = WORK_DPS[1]
        while not all(_agree(a, b) for a, b in zip(lo, hi)) and dps < MAX_DPS:
            lo, dps = hi, dps * 2
            hi = self._eval(row, dps)
        vals = np.zeros(len(self.exprs))
        kinds = np.full(len(self.exprs), FINITE, dtype=np.int8)
        for j, v in enumerate(hi):
            vals[j], kinds[j] = _classify(v)
        return vals, kinds


def _as_mp(value):
    """A lambdified result as an mpf, None for undefined."""
    if isinstance(value, (sp.Basic,)):
        if value in (sp.zoo, sp.nan):
            return None
        if value == sp.oo:
            return mpmath.inf
        if value == -sp.oo:
            return -mpmath.inf
        try:
            value = mpmath.mpmathify(sp.N(value, 50))
        except (TypeError, ValueError):
            return None
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            return None
        value = value.real
    if isinstance(value, (int, float)):
        value = mpmath.mpf(value)
    if not isinstance(value, mpmath.mpf):
        return None
    if mpmath.isnan(value):
        return None
    return value


def _agree(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if mpmath.isinf(a) or mpmath.isinf(b):
        return a == b
    return abs(a - b) <= AGREE * max(abs(a), abs(b)) or a == b


def _classify(value) -> tuple[float, int]:
    if value is None:
        return float("nan"), UNDEFINED
    if mpmath.isinf(value):
        return (float("inf"), POS_INF) if value > 0 else (float("-inf"), NEG_INF)
    f = float(value)  # correctly rounded to float64; beyond float64's range becomes ±inf
    return f, FINITE


def evaluate(exprs: Sequence[sp.Expr], symbols: Sequence[sp.Symbol], values: np.ndarray):
    """Convenience: build an :class:`Evaluator` and apply it."""
    return Evaluator(exprs, symbols)(values)
