"""The exact oracle: every expression lambdified for mpmath and evaluated point by point at
two working precisions that must agree. Slow; tests hold the fast path to it, and
``DIFFCHECK_REFERENCE=mpmath`` makes the checker use it."""

from __future__ import annotations

from typing import Sequence

import mpmath
import numpy as np
import sympy as sp

from ..compare import FINITE
from .mp import MAX_DPS, MODULES, WORK_DPS, agree, as_mp, classify


class MpmathEvaluator:
    """The exact oracle: every expression lambdified for mpmath (with common-subexpression
    elimination) and evaluated point by point at two working precisions; where the two
    disagree beyond 1e-25 relative, again with more digits. Rounded once to float64."""

    def __init__(self, exprs: Sequence[sp.Expr], symbols: Sequence[sp.Symbol]):
        self.exprs = list(exprs)
        self.symbols = list(symbols)
        self._fn = sp.lambdify(self.symbols, self.exprs, modules=MODULES, cse=True)

    def __call__(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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
            return [as_mp(r) for r in result]

    def _point(self, row: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        lo = self._eval(row, WORK_DPS[0])
        hi = self._eval(row, WORK_DPS[1])
        dps = WORK_DPS[1]
        while not all(agree(a, b) for a, b in zip(lo, hi)) and dps < MAX_DPS:
            lo, dps = hi, dps * 2
            hi = self._eval(row, dps)
        vals = np.zeros(len(self.exprs))
        kinds = np.full(len(self.exprs), FINITE, dtype=np.int8)
        for j, v in enumerate(hi):
            vals[j], kinds[j] = classify(v)
        return vals, kinds
