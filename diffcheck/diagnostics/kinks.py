"""Kinks and singular points: where the exact derivative is discontinuous, infinite or
undefined, and what torch may honestly return there.

Finite differences are blind at a kink (gradcheck says relu'(0) "should" be 0.5) and cannot
tell a NaN from a real singularity. Here the exact derivative is known, so:

* :func:`find_kinks` reads the exact expressions for the points where they switch branch —
  the arguments of Heaviside, sign, Abs, Max/Min, DiracDelta and the conditions of Piecewise
  crossing zero — inside the domain, for a scalar variable or an elementwise function of one
  vector variable, and those points are always checked;
* :func:`one_sided` gives the one-sided limits of every derivative entry at a point, so that
  torch's value is judged against the subdifferential between them, and
  :func:`convention` names the choice torch made (left limit, right limit, midpoint);
* :func:`limit_sides` tells, at a point where the exact derivative is infinite or undefined,
  which infinity (if any) torch should return.

SymPy's own value at a kink is a convention too — ``diff(Max(0, x))`` is ``Heaviside(x)`` with
``Heaviside(0) = 1/2`` — so it is never used as *the* answer at a kink.
"""

from __future__ import annotations

from typing import Sequence

import mpmath
import numpy as np
import sympy as sp

from ..reference.mp import MODULES, as_mp
from ..symbolic import CompiledCase

STEP = mpmath.mpf("1e-60")   # distance from the kink for the one-sided limits
STEP2 = STEP ** 2            # a second, much closer look: a pole grows between the two
DPS = 200                    # working precision: STEP2 must be far above it
POLE = mpmath.mpf(100)       # a value that doubles (or more) between STEP and STEP2 and exceeds this is a pole
MAX_KINKS = 16


def _branch_arguments(expr: sp.Expr) -> list[sp.Expr]:
    """Expressions whose sign change switches a branch of ``expr``."""
    out: list[sp.Expr] = []
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Heaviside, sp.sign, sp.Abs, sp.DiracDelta)):
            out.append(node.args[0])
        elif isinstance(node, (sp.Max, sp.Min)):
            args = list(node.args)
            out += [a - b for i, a in enumerate(args) for b in args[i + 1:]]
        elif isinstance(node, sp.Piecewise):
            for _, cond in node.args:
                if isinstance(cond, sp.core.relational.Relational):
                    out.append(cond.lhs - cond.rhs)
    return out


def kink_variable(compiled: CompiledCase) -> tuple[sp.Symbol, list[sp.Symbol]] | None:
    """The scalar symbol to solve for and every element symbol that moves with it: a scalar
    variable, or one vector variable of an elementwise function. None otherwise."""
    case = compiled.case
    if len(case.variables) != 1:
        return None
    syms = list(compiled.var_symbols[case.variables[0].name].ravel())
    if len(syms) == 1:
        return syms[0], syms
    out = compiled.output
    if out.shape != compiled.var_symbols[case.variables[0].name].shape:
        return None
    for o, s in zip(out.ravel(), syms):
        if (o.free_symbols & set(syms)) - {s}:
            return None
    return syms[0], syms


def find_kinks(compiled: CompiledCase, exprs: Sequence[sp.Expr], dtype: str | None = None) -> list[float]:
    """Kink locations (values of the case's variable, or of every element of it) in the domain:
    the exact real roots (rational or algebraic, any degree) of every branch argument, with
    the case's constants as the dtype under test holds them. An argument that is not a
    polynomial because of an Abs, Max or Min inside (``abs(x - a) - c``) is solved branch by
    branch, and a root is kept when the argument itself vanishes there. The locations are
    the roots' float64 values: :meth:`PointSet.with_kinks` inserts the dtype's nearest value,
    which the reference then examines at the exact boundary
    (:mod:`diffcheck.diagnostics.limits`)."""
    found = kink_variable(compiled)
    if found is None:
        return []
    x, syms = found
    var = compiled.case.variables[0]
    lo, hi = var.domain
    data = _exact_constants(compiled, dtype)
    scan = [e for e in list(exprs) + list(compiled.output.ravel()) if e.free_symbols & set(syms) <= {x}]
    points: set[float] = set()
    for arg in {a.xreplace(data) for e in scan for a in _branch_arguments(e)}:
        if arg.free_symbols != {x}:
            continue
        for root in _roots(arg, x):
            value = float(root)
            if lo <= value <= hi:
                points.add(value)
    return sorted(points)[:MAX_KINKS]


def _variants(expr: sp.Expr, depth: int = 0) -> list[sp.Expr]:
    """``expr`` with each Abs, Max and Min replaced by one of its branches, every way (at most 16)."""
    node = next((a for a in sp.preorder_traversal(expr) if isinstance(a, (sp.Abs, sp.Max, sp.Min))), None)
    if node is None or depth > 4:
        return [expr]
    choices = [node.args[0], -node.args[0]] if isinstance(node, sp.Abs) else list(node.args)
    out: list[sp.Expr] = []
    for c in choices:
        out += _variants(expr.xreplace({node: c}), depth + 1)
    return out[:16]


def _roots(arg: sp.Expr, x: sp.Symbol) -> list:
    out = []
    variants = _variants(arg)
    for v in variants:
        try:
            poly = sp.Poly(v, x)
        except sp.PolynomialError:
            continue
        if poly.degree() < 1 or poly.degree() > 8:
            continue
        if poly.domain.is_QQ or poly.domain.is_ZZ:
            roots = poly.real_roots()
        elif poly.degree() <= 2:  # irrational coefficients (pi/4): the closed form
            roots = [r for r in sp.roots(poly, x) if r.is_real]
        else:
            continue
        for root in roots:
            if len(variants) == 1 or abs(sp.N(arg.xreplace({x: root}), 50)) < 1e-40:
                out.append(root)
    return out


def _exact_constants(compiled: CompiledCase, dtype: str | None = None) -> dict:
    """The symbolic constants as exact rationals: the values the dtype under test holds
    (the decimal text of the case file when no dtype is given)."""
    from fractions import Fraction
    from ..points import round_to
    out = {}
    for name, syms in compiled.const_symbols.items():
        vals = compiled.const_values[name].ravel()
        if dtype is not None:
            vals = round_to(vals, dtype)
        for s, v in zip(syms.ravel(), vals):
            f = Fraction(float(v)) if dtype is not None else Fraction(repr(float(v)))
            out[s] = sp.Rational(f.numerator, f.denominator)
    return out


class SidedEvaluator:
    """Evaluate expressions in high precision with the moving symbols shifted by ±STEP."""

    def __init__(self, exprs: Sequence[sp.Expr], symbols: Sequence[sp.Symbol]):
        self.fn = sp.lambdify(list(symbols), list(exprs), modules=MODULES, cse=True)
        self.n = len(exprs)

    def at(self, row: np.ndarray, moving: Sequence[int], shift) -> list:
        with mpmath.workdps(DPS):
            args = [mpmath.mpf(float(v)) for v in row]
            for i in moving:
                args[i] = args[i] + shift
            try:
                return [as_mp(v) for v in self.fn(*args)]
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                return [None] * self.n


def one_sided(evaluator: SidedEvaluator, row: np.ndarray, moving: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(left, right) limits of every expression at ``row`` (NaN where a side is undefined)."""
    def side(sign):
        near, nearer = evaluator.at(row, moving, sign * STEP), evaluator.at(row, moving, sign * STEP2)
        return np.array([_limit_float(a, b) for a, b in zip(near, nearer)])
    return side(-1), side(1)


def _limit_float(near, nearer) -> float:
    if near is None or nearer is None:
        return float("nan")
    if mpmath.isinf(nearer) or (abs(nearer) > POLE and abs(nearer) >= 1.5 * abs(near)):
        return float("inf") if nearer > 0 else float("-inf")
    v = nearer
    if abs(v) < STEP:  # an O(STEP) remainder of a limit that is zero
        return 0.0
    # the limit, not the value STEP away: round away the O(STEP) part
    return float(mpmath.nstr(v, 30))


def convention(left: float, right: float, value: float, allowed: float) -> str | None:
    """Which choice inside [left, right] torch's ``value`` is, or None when it is outside."""
    lo, hi = min(left, right), max(left, right)
    if not (lo - allowed <= value <= hi + allowed):
        return None
    if abs(value - left) <= allowed:
        return f"left limit ({_short(left)})"
    if abs(value - right) <= allowed:
        return f"right limit ({_short(right)})"
    if abs(value - (left + right) / 2) <= allowed:
        return f"midpoint ({_short((left + right) / 2)})"
    return f"inside [{_short(lo)}, {_short(hi)}]"


def _short(v: float) -> str:
    return f"{v:.6g}"


def limit_sides(left: float, right: float) -> str | None:
    """The infinity torch should return at a pole: '+inf', '-inf', or None when the one-sided
    limits disagree or are finite."""
    sides = [s for s in (left, right) if not np.isnan(s)]
    if sides and all(np.isinf(s) for s in sides) and len({np.sign(s) for s in sides}) == 1:
        return "+inf" if sides[0] > 0 else "-inf"
    return None
