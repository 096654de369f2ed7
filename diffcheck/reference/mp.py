"""The mpmath vocabulary shared by every exact evaluation: the proof (:mod:`.proof`), the
oracle (:mod:`.oracle`), the kink finder and claims.

``MODULES`` are the lambdify modules of an exact evaluation; :func:`as_mp` reads any computed
value as an mpf, ±inf or None (undefined); :func:`classify` rounds an exact value to float64
with its kind; :func:`agree` is the oracle's test of two working precisions.
"""

from __future__ import annotations

import mpmath

from ..compare import FINITE, NEG_INF, POS_INF, UNDEFINED

WORK_DPS = (30, 45)       # the lambdified oracle's two precisions (oracle.MpmathEvaluator)
MAX_DPS = 400
AGREE = mpmath.mpf("1e-25")


def dirac(x, *order):
    return mpmath.mpf(0) if x != 0 else mpmath.nan


def heaviside(x, h0=0.5):
    if x > 0:
        return mpmath.mpf(1)
    if x < 0:
        return mpmath.mpf(0)
    return mpmath.mpf(h0)


def sign(x):
    return mpmath.mpf(mpmath.sign(x))


#: lambdify modules of the exact evaluation (SymPy's mpmath printer knows every other
#: function of the op table: tests/test_ops.py checks it)
MODULES = [{"DiracDelta": dirac, "Heaviside": heaviside, "sign": sign}, "mpmath"]


def as_mp(value):
    """A computed value as an mpf, ±inf, or None for undefined (NaN, complex, symbolic)."""
    if value is None or isinstance(value, bool):
        return None if value is None else mpmath.mpf(int(value))
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            return None
        value = value.real
    if isinstance(value, (int, float)):
        value = mpmath.mpf(value)
    if not isinstance(value, mpmath.mpf):
        import sympy as sp
        if isinstance(value, sp.Basic):
            if value in (sp.zoo, sp.nan):
                return None
            if value == sp.oo:
                return mpmath.inf
            if value == -sp.oo:
                return -mpmath.inf
            try:
                return as_mp(mpmath.mpmathify(sp.N(value, 50)))
            except (TypeError, ValueError):
                return None
        return None
    if mpmath.isnan(value):
        return None
    return value


def agree(a, b) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if mpmath.isinf(a) or mpmath.isinf(b):
        return a == b
    return abs(a - b) <= AGREE * max(abs(a), abs(b)) or a == b


def classify(value) -> tuple[float, int]:
    """(float64 value, kind) of an exact value: correctly rounded, ±inf, or undefined."""
    if value is None:
        return float("nan"), UNDEFINED
    if mpmath.isinf(value):
        return (float("inf"), POS_INF) if value > 0 else (float("-inf"), NEG_INF)
    return float(value), FINITE
