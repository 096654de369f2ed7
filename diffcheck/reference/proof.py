"""mpmath, with a proof: :class:`MpmathGraph` evaluates the entries the faster passes could not
prove, on the same graph, with the same running error analysis, at more and more digits
until every bound shows the correctly rounded float64.

Each op's kernel is a row of a table (``_READS_NODES``, ``_ON_VALUES``), derived from the op
table of :mod:`diffcheck.symbolic.ops` (its mpmath functions and error slopes).
"""

from __future__ import annotations

import sys
from fractions import Fraction
from typing import Any, Sequence

import mpmath
import numpy as np
import sympy as sp

from ..symbolic.dag import Program
from ..symbolic.ops import OPS, elementwise, structural
from .mp import MODULES, as_mp, heaviside, sign

PROOF_DPS = (30, 4000)    # the graph evaluator: first and last precision of its proofs
FIRST_DPS_CAP = 400       # the most a first evaluation starts at (see first_precision)
_ERRORS = (ZeroDivisionError, ValueError, OverflowError, TypeError)


class MpmathGraph:
    """Exact values of a Program's entries at one point, by mpmath, with a proof.

    Every node is evaluated once at a working precision together with a bound on its
    absolute error — the same running error analysis as the vectorized pass, with the unit
    roundoff of the working precision. An entry is done when its bound shows that it rounds
    to one float64 (correct rounding), or that it is an exact zero, or below float64's
    smallest subnormal. Otherwise the precision doubles (30 digits, 60, … up to
    ``PROOF_DPS[1]``: cosh(710) − sinh(710) needs 620 digits), and at the last one the
    value is taken as it is.

    Two precisions that merely agree prove nothing: ``1 − tanh(x)²`` at x = 300 and
    ``log(1 + 2e⁻¹⁰⁷)`` are 0 at 30 and at 45 digits alike, and wrong at both; their bounds
    say so. Undefined values (0/0, a complex result, a function outside its domain) are
    None, like the lambdified evaluator's."""

    def __init__(self, program: Program, symbols: Sequence[Any], nodes: tuple[list, list, list] | None = None):
        self.program = program
        self.ops, self.args, self.data = nodes or (program.ops, program.args, program.data)
        self.symbols = list(symbols)
        self._foreign: dict[int, Any] = {}

    def entries(self, row: np.ndarray, entries: Sequence[int], start: int | None = None) -> list:
        """Exact values (mpf, ±inf, or None for undefined) of ``entries`` at ``row``;
        ``start`` is the first precision to try (default ``PROOF_DPS[0]``)."""
        todo = list(range(len(entries)))
        out: list = [None] * len(entries)
        dps = min(max(start or PROOF_DPS[0], PROOF_DPS[0]), PROOF_DPS[1])
        while todo:
            found = self._eval(row, [entries[k] for k in todo], dps)
            last = dps >= PROOF_DPS[1]
            left, wanted = [], 2 * dps
            for k, (value, bound) in zip(todo, found):
                if last or _settled(value, bound):
                    out[k] = value
                else:
                    left.append(k)
                    wanted = max(wanted, _digits_to_settle(value, bound, dps))
            todo, dps = left, min(wanted, PROOF_DPS[1])
        return out

    def _eval(self, row: np.ndarray, entries: Sequence[int], dps: int) -> list:
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20_000))
        try:
            with mpmath.workdps(dps):
                self._u = mpmath.ldexp(1, -mpmath.mp.prec)
                memo: dict[int, Any] = {}
                args = [mpmath.mpf(float(v)) for v in row]
                found = []
                for j in entries:
                    value, bound = self._node(self.program.outputs[j], memo, args)
                    found.append((as_mp(value), bound))
                return found
        finally:
            sys.setrecursionlimit(limit)

    def _node(self, i: int, memo: dict, row: list):
        if i in memo:
            return memo[i]
        try:
            value = self._compute(i, memo, row)
        except _ERRORS:  # 1/0: undefined only if the 0 is exact, else unknown at this precision
            value = (None, _unknown(memo.get(a, (None, 0))[1] for a in self.args[i]))
        if value[0] is not None and isinstance(value[0], mpmath.mpc):  # complex: undefined here
            value = (None, value[1]) if value[0].imag != 0 else (value[0].real, value[1])
        memo[i] = value
        return value

    def _compute(self, i: int, memo: dict, row: list):
        """(value, bound on its absolute error) of node i; value None when undefined."""
        op = self.ops[i]
        own = _READS_NODES.get(op)
        if own is not None:
            return own(self, i, memo, row)
        vals = [self._node(a, memo, row) for a in self.args[i]]
        undefined = [a for v, a in vals if v is None or isinstance(v, mpmath.mpc)]
        if undefined:  # proven undefined (bound 0), or not known at this precision (a bound)
            return None, _unknown(undefined)
        return _ON_VALUES[op](self, i, vals)

    def _foreign_value(self, i: int, row: list):
        expr, cols = self.program.data[i]
        if i not in self._foreign:
            self._foreign[i] = sp.lambdify([self.symbols[c] for c in cols], expr, modules=MODULES)
        value = self._foreign[i](*(row[c] for c in cols))
        return as_mp(value)



# --- the kernels: node i of graph g at the working precision ---------------------------------
# Leaves and piecewise read their nodes themselves (a piecewise evaluates only the branches it
# needs); every other kernel gets its arguments' (value, absolute bound) pairs.

def _m_sym(g, i, memo, row):
    return row[g.data[i]], 0


def _m_num(g, i, memo, row):
    data = g.data[i]
    v = mpmath.mpf(data.numerator) / mpmath.mpf(data.denominator)
    return v, (0 if data.denominator & (data.denominator - 1) == 0 else g._u * abs(v))


def _m_float(g, i, memo, row):
    data = g.data[i]
    v = mpmath.mpf(data[0])
    return v, (0 if data[0][3] <= mpmath.mp.prec else g._u * abs(v))


def _m_const(g, i, memo, row):
    v = +mpmath.pi if g.data[i] == "pi" else +mpmath.e
    return v, g._u * v


def _m_special(g, i, memo, row):
    return {"oo": mpmath.inf, "-oo": -mpmath.inf}.get(g.data[i]), 0


def _m_bool(g, i, memo, row):
    return bool(g.data[i]), 0


def _m_foreign(g, i, memo, row):
    """No error analysis for an arbitrary function: trust 3/4 of the digits."""
    v = g._foreign_value(i, row)
    return v, (None if v is None else abs(v) * mpmath.ldexp(1, -(3 * mpmath.mp.prec) // 4))


def _m_piecewise(g, i, memo, row):
    kids = g.args[i]
    for e, c in zip(kids[0::2], kids[1::2]):
        cond, unsure = g._node(c, memo, row)
        if cond is None:
            return None, 0
        if cond:
            v, a = g._node(e, memo, row)
            return v, (mpmath.inf if unsure else a)
        if unsure:
            v, a = g._node(e, memo, row)
            return v, mpmath.inf
    return None, 0


def _unknown(bounds) -> Any:
    """The bound of an undefined result from arguments with these bounds: 0 (proven undefined)
    when every argument is exact, else infinite: a value that is 0 at this precision but not
    proven so (``1 − erfc(8.5)/2``, Φ(−12) = 1.8e-33 cancelled to 0 at 30 digits) must not make
    1/it a proven undefined value; a higher precision decides."""
    return mpmath.inf if any(b for b in bounds) else 0


def _exact(op, vals):
    """Exact operands (inputs, their sums and products): compute exactly, then round once, so
    that 2 − a − b at a = b = 1 is a proven zero, not an unknown one."""
    combine = mpmath.fadd if op == "add" else mpmath.fmul
    exact = vals[0][0]
    for v, _ in vals[1:]:
        exact = combine(exact, v, exact=True)
    total = +exact
    return total, abs(mpmath.fsub(exact, total, exact=True))


def _m_add(g, i, vals):
    if all(a == 0 for _, a in vals):
        return _exact("add", vals)
    total, bound, size = vals[0][0], vals[0][1], abs(vals[0][0])
    for v, a in vals[1:]:
        total = total + v
        bound += a
        size += abs(v)
    return total, bound + (len(vals) - 1) * g._u * size


def _m_mul(g, i, vals):
    if all(a == 0 for _, a in vals):
        return _exact("mul", vals)
    total = vals[0][0]
    for v, _ in vals[1:]:
        total = total * v
    if total == 0:
        if any(v == 0 and a == 0 for v, a in vals):
            return total, 0
    bound = 0
    for k, (v, a) in enumerate(vals):
        if a:
            rest = 1
            for m, (w, _) in enumerate(vals):
                if m != k:
                    rest *= abs(w)
            bound += a * rest
    return total, bound + (len(vals) - 1) * g._u * abs(total)


def _m_pow(g, i, vals):
    (base, ab), (exp, ae) = vals
    kids = g.args[i]
    k = g.data[kids[1]] if g.ops[kids[1]] == "num" else None
    if ab and abs(base) <= ab:  # not even the sign of the base is known yet
        return None, mpmath.inf
    if k == Fraction(1, 2):
        v = mpmath.sqrt(base)
    elif k == Fraction(-1, 2):
        v = 1 / mpmath.sqrt(base)
    elif k is not None and k.denominator == 1:
        v = base ** int(k)
    else:
        v = base ** exp
    if isinstance(v, mpmath.mpc) or base == 0:
        return v, 0
    slope = abs(exp * v / base) * ab
    if k is None and ae:
        slope += abs(v * mpmath.log(abs(base))) * ae
    return v, slope + 2 * g._u * abs(v)


def _m_sech2(g, i, vals):
    (t, at), = vals
    data = g.data[i]
    v = (mpmath.mpf(data.numerator) / data.denominator) * mpmath.sech(t) ** 2
    return v, 2 * abs(v) * at + 4 * g._u * abs(v)


def _m_elementwise(g, i, vals):
    """An op of the table with an mpmath kernel and an error slope."""
    op = OPS[g.ops[i]]
    kernel = op.mp
    if len(vals) == 1:
        (t, at), = vals
        if op.mp_edge is not None and at and abs(op.mp_edge(t)) <= at:
            return None, mpmath.inf  # near the branch point with an unknown sign
        v = kernel.fn(t)
        if isinstance(v, mpmath.mpc) or mpmath.isinf(v):
            return v, 0
        return v, (kernel.slope(t, v) * at if at else 0) + 2 * g._u * abs(v)
    args = [v for v, _ in vals]
    v = kernel.fn(*args)
    if isinstance(v, mpmath.mpc) or mpmath.isinf(v):
        return v, 0
    bound = 2 * g._u * abs(v)
    if any(a for _, a in vals):
        bound += sum(s * a for s, (_, a) in zip(kernel.slope(*args, v), vals) if a)
    return v, bound


def _m_sign(g, i, vals):
    (t, at), = vals
    return sign(t), (0 if (t == 0 and at == 0) or abs(t) > at else mpmath.inf)


def _m_heaviside(g, i, vals):
    (t, at), (h0, ah) = vals
    decided = (t == 0 and at == 0) or abs(t) > at
    return heaviside(t, h0), ((ah if t == 0 else 0) if decided else mpmath.inf)


def _m_dirac(g, i, vals):
    (t, at), = vals
    if t == 0 and at == 0:
        return None, 0
    return mpmath.mpf(0), (0 if abs(t) > at else mpmath.inf)


def _m_extreme(g, i, vals):
    pick = max if g.ops[i] == "max" else min
    return pick(v for v, _ in vals), max(a for _, a in vals)


_RELATION = {"gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b,
             "le": lambda a, b: a <= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b}


def _m_relation(g, i, vals):
    (a, aa), (b, ab) = vals
    decided = (aa == 0 and ab == 0) or abs(a - b) > 2 * (aa + ab)
    return _RELATION[g.ops[i]](a, b), (0 if decided else 1)


def _m_logic(g, i, vals):
    op = g.ops[i]
    unsure = any(a for _, a in vals)
    truth = [bool(v) for v, _ in vals]
    value = all(truth) if op == "and" else any(truth) if op == "or" else not truth[0]
    return value, (1 if unsure else 0)


_READS_NODES = {"sym": _m_sym, "num": _m_num, "float": _m_float, "const": _m_const,
                "special": _m_special, "bool": _m_bool, "foreign": _m_foreign, "piecewise": _m_piecewise}
_OWN = {"add": _m_add, "mul": _m_mul, "pow": _m_pow, "sech2": _m_sech2, "sign": _m_sign,
        "heaviside": _m_heaviside, "dirac": _m_dirac, "max": _m_extreme, "min": _m_extreme,
        "and": _m_logic, "or": _m_logic, "not": _m_logic, **{op: _m_relation for op in _RELATION}}
#: op → mpmath kernel on argument values, derived from the op table
_ON_VALUES = {**{op: _OWN[op] for op in structural("mp") - set(_READS_NODES)},
              **{op: _m_elementwise for op in elementwise("mp")}}
#: every op the proof can evaluate
MP_KERNELS = frozenset(_READS_NODES) | frozenset(_ON_VALUES)


SUBNORMAL_HALF = mpmath.ldexp(1, -1075)


def first_precision(values: np.ndarray, rel_bounds: np.ndarray) -> int:
    """Where mpmath starts for a row's unproven entries, from what the extended-precision
    pass knows of them (about 19 digits and a bound): a value that is zero as far as that
    pass can tell goes straight to the ~330 digits that prove it (one evaluation, not four).
    At most ``FIRST_DPS_CAP``: one wild bound must not put every entry at 4000 digits."""
    wanted = PROOF_DPS[0]
    for v, r in zip(values, rel_bounds):
        if np.isfinite(v) and np.isfinite(r):
            wanted = max(wanted, _digits_to_settle(mpmath.mpf(float(v)), abs(mpmath.mpf(float(v))) * float(r), 19))
    return min(wanted, FIRST_DPS_CAP)


def _digits_to_settle(value, bound, dps: int) -> int:
    """A guess at the precision that settles ``value``: its bound shrinks about tenfold per
    digit, and must come below 2⁻⁶⁰ of the value, or below the smallest subnormal for a
    value that may be zero (an exact zero needs about 330 digits: doubling from 30 would
    evaluate at 60, 120 and 240 first). Only the order of precisions depends on it: a guess
    too low is followed by doubling, and what settles is decided by :func:`_settled`."""
    if value is None or bound is None or not mpmath.isfinite(bound) or bound <= 0 or not mpmath.isfinite(value):
        return 2 * dps
    # a bound as large as the value leaves zero possible: then only the subnormal floor will do
    target = SUBNORMAL_HALF if bound >= abs(value) else max(abs(value) * mpmath.ldexp(1, -60), SUBNORMAL_HALF)
    if bound <= target:
        return 2 * dps
    return dps + int(mpmath.log10(bound / target)) + 10


def _settled(value, bound) -> bool:
    """The exact value's float64 is known: one rounding for the whole error interval."""
    if value is None:
        return bound == 0
    if bound is None or not mpmath.isfinite(bound):
        return False
    if mpmath.isinf(value):
        return bound == 0
    if bound == 0:
        return True
    if abs(value) + bound < SUBNORMAL_HALF:
        return True
    lo, hi = value - bound, value + bound
    return float(lo) == float(hi) and abs(bound) <= abs(value) * mpmath.ldexp(1, -40)
