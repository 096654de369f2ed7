"""Reference values: exact expressions evaluated at points, correct to float64.

:class:`Evaluator` is what the checker uses. It evaluates all entries at all points at once
in extended precision with a running bound on every value's error, then in the log domain
where even that range overflows (:mod:`diffcheck.fastref`); it keeps the entries whose
bound proves the float64 value within one ulp of the exact one, and computes every other
entry with mpmath, at more and more digits, until a bound proves its correctly rounded
float64. So exp(1000), σ′(−800), sigmoid(−65504) and cancellations deeper than any fixed
precision hold no terrors: where a value is not proven, it is not used.

:class:`MpmathEvaluator` is the original, purely mpmath evaluator (lambdified, point by
point, two working precisions that must agree). It is slow; tests hold the fast path to
it, and to mpmath at far higher precision where two agreeing precisions are both wrong.
Set ``DIFFCHECK_REFERENCE=mpmath`` to make the checker use it.

A value that is infinite is reported as ±inf (kind POS_INF/NEG_INF); a value that is
undefined (0/0, a complex result, a function outside its domain) as UNDEFINED. Neither is
ever silently dropped.
"""

from __future__ import annotations

import os
from typing import Sequence

import mpmath
import numpy as np
import sympy as sp

from ..compare import FINITE
from ..symbolic.dag import ExprList, Program, from_sympy
from .fast import (MAX_DPS, WORK_DPS, Stats, _agree, _as_mp, _dirac, _heaviside, classify, magnitude,
                      plan, reference)


def _sign(x):
    return mpmath.mpf(mpmath.sign(x))


#: lambdify modules of the exact evaluation
MODULES = [{"DiracDelta": _dirac, "Heaviside": _heaviside, "sign": _sign}, "mpmath"]
_MODULES = MODULES  # the name kinks.py and claims.py import
__all__ = ["Evaluator", "MpmathEvaluator", "MODULES", "evaluate", "program_of", "_MODULES", "_as_mp"]


def program_of(exprs: Sequence[sp.Expr], symbols: Sequence[sp.Symbol]) -> Program:
    """The shared graph of ``exprs``: the one an ExprList already holds, else built."""
    if isinstance(exprs, ExprList) and exprs.symbols == list(symbols):
        return exprs.program
    return from_sympy(list(exprs), symbols)


class Evaluator:
    """Evaluate a list of SymPy expressions of ``symbols`` at many points."""

    def __init__(self, exprs: Sequence[sp.Expr], symbols: Sequence[sp.Symbol]):
        self.exprs = exprs
        self.symbols = list(symbols)
        self.program = program_of(exprs, self.symbols)
        self.stats = Stats()

    def magnitude(self, values: np.ndarray) -> float:
        """The largest finite |exact value| at ``values``, to 6 digits (see
        :func:`diffcheck.fastref.magnitude`)."""
        if os.environ.get("DIFFCHECK_REFERENCE") == "mpmath":
            out, kinds = self(values)
            finite = np.abs(out[(kinds == FINITE) & np.isfinite(out)])
            return float(finite.max()) if finite.size else 0.0
        size, stats = magnitude(self.program, self.symbols, np.asarray(values, dtype=np.float64), self._plan())
        self.stats += stats
        return size

    def __call__(self, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``values``: (P, len(symbols)) float64, each exactly the input torch sees.
        Returns (reference (P, n) float64, kinds (P, n) int8), each value correctly rounded."""
        if os.environ.get("DIFFCHECK_REFERENCE") == "mpmath":
            return MpmathEvaluator(list(self.exprs), self.symbols)(values)
        out, kinds, stats = reference(self.program, self.symbols, np.asarray(values, dtype=np.float64),
                                      self._plan())
        self.stats += stats
        return out, kinds

    def _plan(self):
        """The vectorized plan of the program, built once and kept with it."""
        derived = self.program.derived
        if "plan" not in derived:
            derived["plan"] = plan(self.program)
        return derived["plan"]


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
            vals[j], kinds[j] = classify(v)
        return vals, kinds


def evaluate(exprs: Sequence[sp.Expr], symbols: Sequence[sp.Symbol], values: np.ndarray):
    """Convenience: build an :class:`Evaluator` and apply it."""
    return Evaluator(exprs, symbols)(values)
