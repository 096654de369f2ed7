"""Limits at special points: where the exact expression is undefined, infinite, or sits on a
branch boundary, the reference is what the function does *near* the point.

Two kinds of point are special for an entry:

* **undefined or infinite** exact value (0/0, 0·log 0, ``a**b`` at a = 0, the apex of a norm):
  the limit of the entry decides. NaN-gradient bugs live exactly there, so a finite limit is
  compared like any exact value, and NaN or inf from torch there fails.
* **on a branch boundary**: an argument of Abs, sign, Heaviside, DiracDelta, Max/Min (the
  difference of two of its arguments) or a relation (``where``/Piecewise conditions) is zero
  at the point, or within a few roundings of the dtype of zero (a threshold ``0.1`` that torch
  holds as fl(0.1)). SymPy's own value there is a convention (Heaviside(0) = 1/2, the constant
  branch of ``where(x == 0, 1, sin(x)/x)``), never the answer: the one-sided (directional)
  limits are. Found anywhere in the expression graph: inside sums and reductions, in
  non-polynomial conditions (``abs(d) < c``), nested Min/Max, two-sided clamps.

At such a point every examined entry gets its limits along several directions (both signs of
a scalar; for several variables the coordinate directions of the variables involved, the
diagonal and seeded random directions, each both ways), at two shrinking steps in high
precision (:data:`STEPS`). A direction along which the function itself is undefined
(``log`` left of 0) is left out. Then:

* all limits agree and are finite: that limit is the reference;
* finite limits that differ (a locally Lipschitz function at a kink): any value in their
  convex hull [lo, hi] is right;
* an infinite limit (a true pole), limits that do not settle at the two steps, or no
  direction where the function is defined: the entry stays ``singular`` and is not compared.

A row that is within rounding of a boundary but not on it (the dtype's nearest value to an
irrational threshold) is examined at its projection onto the boundary (Newton's method in high
precision), and the exact value at the row itself joins the hull.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Sequence

import mpmath
import numpy as np
import sympy as sp

from ..reference.mp import MODULES as _MODULES, as_mp as _as_mp
from ..symbolic.dag import RELATIONS, Program

#: the two distances from the point (in units of the point's own size, at least 1)
STEPS = (mpmath.mpf("1e-20"), mpmath.mpf("1e-40"))
DIGITS = 200                      # working precision: a pole of order k near STEPS[1] cancels 40·k digits
CHECK_DIGITS = 60                 # more digits for a second look at the nearer step: they must agree
MAX_DIGITS = 800                  # a direction whose values depend on the precision is retried up to this
SETTLED = mpmath.mpf("1e-15")     # relative agreement of the two steps that makes a limit
POLE = mpmath.mpf(10)             # |value| beyond this that grows 1.5× from step to step: a pole (log grows slowly)
NEAR = 4.0                        # a branch argument within NEAR·eps·(its terms' size) is at the boundary
MAX_COORDINATES = 8               # coordinate directions examined (both ways)
RANDOM_DIRECTIONS = 2             # seeded random directions (both ways)
MAX_ARGUMENTS = 4000              # branch arguments read from one graph
_BRANCH_OPS = {"abs", "sign", "dirac", "heaviside", "max", "min", *RELATIONS}


@dataclass
class BranchArguments:
    """The branch arguments of a Program: ``exprs[k]`` is zero on a boundary, ``scales[k]`` the
    size of its terms; ``masks[j]`` the arguments output ``j`` depends on (a bitmask)."""

    exprs: list[sp.Expr]
    scales: list[sp.Expr]
    masks: list[int]
    evaluator: object = None  # the reference evaluator of exprs + scales, built on first use


def branch_arguments(program: Program, symbols: Sequence[sp.Symbol], moving: Sequence[int]) -> BranchArguments:
    moving_syms = {symbols[c] for c in moving}
    index: dict[sp.Expr, int] = {}
    exprs: list[sp.Expr] = []
    own: dict[int, int] = {}
    for i, op in enumerate(program.ops):
        if op not in _BRANCH_OPS or len(exprs) >= MAX_ARGUMENTS:
            continue
        kids = [program.node_sympy(k, symbols) for k in program.args[i]]
        if op in ("abs", "sign", "dirac", "heaviside"):
            found = [kids[0]]
        elif op in ("max", "min"):
            found = [a - b for n, a in enumerate(kids) for b in kids[n + 1:]]
        else:
            found = [kids[0] - kids[1]]
        mask = 0
        for e in found:
            if not isinstance(e, sp.Expr) or not (e.free_symbols & moving_syms):
                continue
            if e not in index:
                index[e] = len(exprs)
                exprs.append(e)
            mask |= 1 << index[e]
        if mask:
            own[i] = mask
    scales = [sp.Add(*[sp.Abs(t) for t in sp.Add.make_args(e)]) for e in exprs]
    node_mask = [0] * len(program.ops)
    for i in range(len(program.ops)):
        m = own.get(i, 0)
        for k in program.args[i]:
            m |= node_mask[k]
        node_mask[i] = m
    return BranchArguments(exprs, scales, [node_mask[o] for o in program.outputs])


@dataclass
class EntryLimit:
    """What the limits of one entry at one point say."""

    kind: str                 # "limit", "kink", "pole", "undefined nearby", "unsettled"
    lo: float = float("nan")
    hi: float = float("nan")
    limits: list = field(default_factory=list)   # per examined direction: float, ±inf, nan, or None (excluded)


class LimitFinder:
    """Directional limits of some entries of a target at a point, in high precision: the
    target's own expression graph evaluated by mpmath (:class:`MpmathGraph`, shared nodes
    computed once per point), so nothing is compiled per point."""

    def __init__(self, program: Program, entries: Sequence[int], guard_program: Program | None,
                 guard_entries: Sequence[int], symbols: Sequence[sp.Symbol]):
        """``entries`` of ``program`` are examined; ``guard_entries`` of ``guard_program``
        (the function's values) must be defined along a direction for it to count (none:
        the entries themselves)."""
        from ..reference.proof import MpmathGraph
        self.n = len(entries)
        self.entries = list(entries)
        self.graph = _graph(program, symbols, MpmathGraph)
        self.guard = _graph(guard_program, symbols, MpmathGraph) if guard_program is not None else None
        self.guard_entries = list(guard_entries) if guard_program is not None else list(entries)

    def _at(self, args: list, guards: bool = True) -> list:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20_000))
        try:
            out = _values(self.graph, args, self.entries)
            if not guards:
                return out
            if self.guard is None:  # each entry is its own guard (see limits)
                return out
            return out + _values(self.guard, args, self.guard_entries)
        finally:
            sys.setrecursionlimit(limit)

    def limits(self, center: list, directions: list[dict[int, float]]) -> list[list]:
        """For every direction, the limit of every entry: an mpf, ±inf, nan (unsettled), or
        None (the function is undefined along that direction). A direction whose values
        change with the working precision is taken again with more digits (up to MAX_DIGITS)."""
        size = max([abs(v) for v in center] + [mpmath.mpf(1)])
        base = DIGITS + max(0, int(mpmath.log10(size)))
        out = []
        for d in directions:
            digits = base
            while True:
                found, lost = self._direction(center, d, size, digits)
                if not lost or digits * 2 > MAX_DIGITS:
                    break
                digits *= 2
            out.append(found)
        return out

    def _direction(self, center: list, d: dict[int, float], size, digits: int) -> tuple[list, bool]:
        """(limits along ``d``, whether some value was lost to the working precision)."""
        with mpmath.workdps(digits):
            seen = []
            for k, step in enumerate(STEPS):
                args = list(center)
                for c, w in d.items():
                    args[c] = args[c] + step * size * w
                seen.append(self._at(args, guards=k == len(STEPS) - 1))
            if any(g is None for g in seen[-1][self.n:]):  # the function is undefined this way
                return [None] * self.n, False
            with mpmath.workdps(digits + CHECK_DIGITS):  # the same point, more digits
                check = self._at(args, guards=False)
            near, nearer = seen[0][:self.n], seen[-1][:self.n]
            same = [_same(b, c) for b, c in zip(nearer, check)]
            return ([None if self.guard is None and b is None  # undefined this way: left out
                     else _settle(a, b) if ok else float("nan")
                     for a, b, ok in zip(near, nearer, same)], not all(same))


def _graph(program: Program, symbols, cls):
    if "mpmath_graph" not in program.derived:
        program.derived["mpmath_graph"] = cls(program, symbols)
    return program.derived["mpmath_graph"]


def _values(graph, args: list, entries: Sequence[int]) -> list:
    """The values (mpf, ±inf, or None when undefined) of ``entries`` at the mpf point
    ``args``, at the current working precision."""
    graph._u = mpmath.ldexp(1, -mpmath.mp.prec)
    memo: dict = {}
    return [_as_mp(graph._node(graph.program.outputs[j], memo, args)[0]) for j in entries]


def _same(a, b) -> bool:
    """Two evaluations of one value at different precisions agree (no lost cancellation)."""
    if a is None or b is None:
        return a is None and b is None
    if mpmath.isinf(a) or mpmath.isinf(b):
        return a == b
    return abs(a - b) <= mpmath.mpf("1e-30") * max(abs(a), abs(b)) or abs(a - b) < mpmath.mpf("1e-300")


def _settle(near, nearer) -> float | None:
    if near is None or nearer is None:
        return float("nan")
    if mpmath.isinf(nearer):
        return float(nearer)
    if abs(nearer) > POLE and abs(nearer) >= 1.5 * abs(near):
        return float("inf") if nearer > 0 else float("-inf")
    if abs(nearer - near) <= SETTLED * abs(nearer):
        return float(nearer)
    if abs(nearer) <= SETTLED and abs(nearer) <= mpmath.mpf("1e-6") * abs(near):
        return 0.0  # an O(step) remainder of a limit that is zero
    return float("nan")


def directions(moving: Sequence[int], involved: Sequence[int], seed: int) -> list[dict[int, float]]:
    """Both signs of: each involved coordinate (at most MAX_COORDINATES), the diagonal, and
    RANDOM_DIRECTIONS seeded random directions (when more than one column moves)."""
    if len(moving) == 1:
        return [{moving[0]: 1.0}, {moving[0]: -1.0}]
    out = []
    for c in list(involved)[:MAX_COORDINATES]:
        out += [{c: 1.0}, {c: -1.0}]
    out += [{c: 1.0 for c in moving}, {c: -1.0 for c in moving}]
    rng = np.random.default_rng(seed)
    for _ in range(RANDOM_DIRECTIONS):
        w = rng.standard_normal(len(moving))
        w /= np.abs(w).max()
        out += [dict(zip(moving, map(float, w))), dict(zip(moving, map(float, -w)))]
    return out


def decide(per_direction: Sequence, own: float | None = None) -> EntryLimit:
    """The verdict of one entry's directional limits (``own``: a value at the point itself
    that belongs in the hull, e.g. the exact value at a row near but not on a boundary)."""
    limits = list(per_direction)
    counted = [v for v in limits if v is not None]
    if not counted:
        return EntryLimit("undefined nearby", limits=limits)
    if any(np.isinf(v) for v in counted):
        return EntryLimit("pole", limits=limits)
    known = [v for v in counted if not np.isnan(v)]
    if not known:
        return EntryLimit("unsettled", limits=limits)
    lo, hi = min(known), max(known)
    if hi - lo <= 1e-12 * max(abs(lo), abs(hi)):
        # one limit: continuous here. Next to a boundary (``own`` given) the exact value at
        # the point itself is the reference; on it, the limit is.
        v = own if own is not None and np.isfinite(own) else lo
        return EntryLimit("limit", v, v, limits)
    if own is not None and np.isfinite(own):
        lo, hi = min(lo, own), max(hi, own)
    return EntryLimit("kink", lo, hi, limits)


def project(arg: sp.Expr, symbols: Sequence[sp.Symbol], center: list, moving: Sequence[int],
            cache: dict) -> list:
    """``center`` moved onto ``arg = 0`` along its gradient (Newton's method in high
    precision), or unchanged when that does not converge."""
    cols = [c for c in moving if symbols[c] in arg.free_symbols]
    if not cols:
        return center
    key = (arg, tuple(cols))
    if key not in cache:
        cache[key] = sp.lambdify(list(symbols), [arg] + [sp.diff(arg, symbols[c]) for c in cols],
                                 modules=_MODULES, cse=True)
    fn = cache[key]
    x = list(center)
    with mpmath.workdps(DIGITS):
        for _ in range(30):
            try:
                vals = [_as_mp(v) for v in fn(*x)]
            except (ZeroDivisionError, ValueError, OverflowError, TypeError, ArithmeticError):
                return center
            if any(v is None for v in vals):
                return center
            a, grad = vals[0], vals[1:]
            if abs(a) <= mpmath.mpf(10) ** (-DIGITS + 20):
                return x
            norm = sum(g * g for g in grad)
            if norm == 0:
                return center
            for c, g in zip(cols, grad):
                x[c] = x[c] - a * g / norm
            size = max([abs(v) for v in center] + [mpmath.mpf(1)])
            if max(abs(x[c] - center[c]) for c in cols) > mpmath.mpf("0.05") * size:
                return center  # gone far: another boundary, not this one
    return center
