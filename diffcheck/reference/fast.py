"""The fast reference: a Program evaluated over all points at once, with a proof of accuracy.

Three passes, each only over what the one before could not prove:

1. **Extended precision, vectorized.** Every node of the graph is evaluated for all points
   as one numpy operation in ``numpy.longdouble`` (64-bit significand, exponents to ±4932
   on x86-64: exp(1000) is an ordinary number), level by level, all nodes of one kind and
   level in one operation. Alongside each value runs a bound on its relative error (running
   error analysis): the inputs' errors carried through the operation's condition number,
   plus its own rounding; sums are added pairwise. A few forms are computed the way a libm
   would (log(1+t) as log1p, eᵗ−1 as expm1, c − c·tanh² as c·sech², exp(a+b) as eᵃ·eᵇ when
   both exist): only how a value is computed changes, never which value.
2. **Log domain.** Points where something overflowed or underflowed even the extended range
   (sigmoid(−65504) = 1/(1 + e⁶⁵⁵⁰⁴)) are evaluated again with values held as (sign, ln|x|)
   and a bound on ln|x|: a result far below float64's smallest subnormal is a proven 0.
3. **mpmath, with a proof** (:class:`MpmathGraph`): every entry still unproven is computed
   on the same graph with the same error analysis at 30 digits, 60, … until its bound
   shows the correctly rounded float64.

An entry of pass 1 or 2 is *trusted* when its bound is at most 2⁻⁵⁴ relative: rounded to
float64 it is then within one ulp of the exact value (and in practice correctly rounded:
2 of 7690 entries in the tests differ from the correctly rounded value, by one ulp).
Nothing is trusted on the agreement of two evaluations: two precisions can agree and both
be wrong after a cancellation (``1 − tanh(300)²`` is 0 at 30 and at 45 digits); a bound
cannot be fooled that way.

On a platform whose longdouble is plain float64 the bounds rarely get below 2⁻⁵⁴ and most
entries take the exact path: slower, never less exact.
"""

from __future__ import annotations

import functools
import math
import sys
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import mpmath
import numpy as np

from ..compare import FINITE, NEG_INF, POS_INF, UNDEFINED
from ..symbolic.dag import Program

LD = np.longdouble
U = float(np.finfo(LD).eps) / 2          # unit roundoff of the extended precision
TRUST = 2.0 ** -54                        # a relative bound that proves ≤ 1 float64 ulp
F64_MAX = float(np.finfo(np.float64).max)
CHUNK_CELLS = 1 << 21                     # nodes × points held at once (≈ 50 MB)
GATHER_CELLS = 1 << 22                    # children × points gathered at once

_UNARY = {"exp", "log", "sin", "cos", "tan", "sinh", "cosh", "tanh", "asinh", "atan", "abs",
          "sign", "dirac", "erf", "log1p", "expm1", "sech2"}
_RELATION = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal,
             "eq": np.equal, "ne": np.not_equal}


# --- planning -------------------------------------------------------------------------------

@dataclass
class _Group:
    op: str
    out: np.ndarray        # (k,) node ids
    kids: np.ndarray       # (k, arity) child ids
    extra: Any = None      # pow: the constant exponent; dirac: order; sech2: the factor
    roundings: np.ndarray | None = None  # mul: (k, 1) multiplications that round
    factor: np.ndarray | None = None     # mul: (k, 1) the product of the constant factors
    factor_bound: np.ndarray | None = None


@dataclass
class Plan:
    """A Program arranged for vectorized evaluation."""

    n: int
    sym_nodes: np.ndarray
    sym_cols: np.ndarray
    const_nodes: np.ndarray
    const_values: np.ndarray  # longdouble
    const_bounds: np.ndarray
    groups: list[_Group]
    outputs: np.ndarray
    nodes: tuple[list, list, list]  # the rewritten (ops, args, data) the groups index


def plan(program: Program) -> Plan:
    ops, args, data = _rewrite(program)
    n = len(ops)
    level = [0] * n
    live = _live(ops, args, program.outputs)
    folded: dict[int, tuple] = {}
    args_eval: dict[int, tuple] = {}
    buckets: dict[tuple, list[int]] = {}
    sym_nodes, sym_cols, const_nodes, const_values, const_bounds = [], [], [], [], []
    for i in range(n):
        op = ops[i]
        if not live[i]:
            continue
        if op == "sym":
            sym_nodes.append(i)
            sym_cols.append(data[i])
            continue
        if op in ("num", "float", "const", "special", "bool", "foreign"):
            value, bound = _constant(op, data[i])
            const_nodes.append(i)
            const_values.append(value)
            const_bounds.append(bound)
            continue
        kids = args[i]
        level[i] = 1 + max(level[a] for a in kids)
        extra = None
        if op == "pow" and ops[kids[1]] == "num":
            extra = data[kids[1]]
        elif op in ("dirac", "sech2"):
            extra = data[i]
        elif op == "mul":  # constant factors are multiplied once, here
            factors = [a for a in kids if ops[a] in _FOLDABLE]
            if factors and len(factors) < len(kids):
                folded[i] = _fold([(ops[a], data[a]) for a in factors])
                kids = tuple(a for a in kids if ops[a] not in _FOLDABLE)
                args_eval[i] = kids
        key = (level[i], op, len(kids), extra)
        buckets.setdefault(key, []).append(i)
    groups = []
    for (lvl, op, arity, extra), nodes in sorted(buckets.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
        kids = np.array([args_eval.get(i, args[i]) for i in nodes], dtype=np.intp).reshape(len(nodes), arity)
        group = _Group(op, np.array(nodes, dtype=np.intp), kids, extra)
        if op == "mul":
            fold = [folded.get(i, (LD(1), 0.0, True)) for i in nodes]
            group.factor = np.array([f[0] for f in fold], dtype=LD)[:, None]
            group.factor_bound = np.array([f[1] for f in fold], dtype=np.float64)[:, None]
            # a product with ±1 or another power of two does not round
            exact = np.array([[_power_of_two(ops[a], data[a]) for a in row] for row in kids.tolist()], dtype=bool)
            rounding = arity - 1 - exact.sum(axis=1) + np.array([0 if f[2] else 1 for f in fold])
            group.roundings = np.maximum(rounding, 0)[:, None].astype(np.float64)
        groups.append(group)
    # Registers in evaluation order: inputs, constants, then each group's nodes side by side,
    # so that a group writes one contiguous block.
    order = sym_nodes + const_nodes + [int(i) for g in groups for i in g.out]
    renumber = np.full(n, -1, dtype=np.intp)
    renumber[order] = np.arange(len(order))
    start = len(sym_nodes) + len(const_nodes)
    for g in groups:
        k = len(g.out)
        g.out = np.arange(start, start + k)
        g.kids = renumber[g.kids]
        if g.factor is not None and bool(np.all(g.factor == 1)) and not g.factor_bound.any():
            g.factor = g.factor_bound = None   # nothing to multiply by
        start += k
    ns, nc = len(sym_nodes), len(const_nodes)
    return Plan(len(order), np.arange(ns), np.array(sym_cols, dtype=np.intp),
                np.arange(ns, ns + nc), np.array(const_values, dtype=LD),
                np.array(const_bounds, dtype=np.float64), groups,
                renumber[np.array(program.outputs, dtype=np.intp)], (ops, args, data))


_FOLDABLE = ("num", "float", "const")


def _fold(factors: list[tuple[str, Any]]) -> tuple[Any, float, bool]:
    """(longdouble product, relative bound, exact power of two?) of constant factors."""
    value, bound, exact = LD(1), 0.0, True
    for op, data in factors:
        v, r = _constant(op, data)
        if not _power_of_two(op, data):
            if not exact or value != 1:
                bound += U
            exact = False
        value, bound = value * v, bound + r
    return value, bound, exact


def _power_of_two(op: str, data) -> bool:
    if op != "num" or data == 0:
        return False
    p, q = abs(data.numerator), data.denominator
    return p & (p - 1) == 0 and q & (q - 1) == 0


def _rewrite(program: Program) -> tuple[list, list, list]:
    """The program's nodes with a few cancellations removed before they happen, as the
    standard library does: log(1 + t) → log1p(t), exp(t) − 1 → expm1(t), and
    c − c·tanh(t)² (tanh's derivative) → c·sech²(t). Only how a value is computed changes."""
    ops, args, data = list(program.ops), list(program.args), list(program.data)
    original = program.ops

    def num(i):
        return data[i] if original[i] == "num" else None

    def tanh_square(i):
        """(k, t) when node i is k·tanh(t)²."""
        k = Fraction(1)
        if original[i] == "mul" and len(args[i]) == 2 and num(args[i][0]) is not None:
            k, i = num(args[i][0]), args[i][1]
        if original[i] == "pow" and num(args[i][1]) == 2 and original[args[i][0]] == "tanh":
            return k, args[args[i][0]][0]
        return None

    for i, op in enumerate(original):
        if op == "add" and len(args[i]) == 2 and num(args[i][0]) is not None:
            c, rest = num(args[i][0]), args[i][1]
            square = tanh_square(rest)
            if square is not None and square[0] == -c and c != 0:
                ops[i], args[i], data[i] = "sech2", (square[1],), c
            elif c == -1 and original[rest] == "exp":
                ops[i], args[i], data[i] = "expm1", args[rest], None
        elif op == "log" and original[args[i][0]] == "add":
            inner = args[i][0]
            if len(args[inner]) == 2 and num(args[inner][0]) == 1:
                ops[i], args[i] = "log1p", (args[inner][1],)

    # exp(a + b) → exp(a)·exp(b), exp(2a) → exp(a)², when exp(a), exp(b) are nodes already:
    # a Jacobian of softmax then multiplies existing exponentials instead of computing n² new ones
    exp_of = {args[i][0]: i for i, op in enumerate(original) if op == "exp"}
    constants: dict[Fraction, int] = {}

    def constant(value: Fraction) -> int:
        if value not in constants:
            ops.append("num")
            args.append(())
            data.append(value)
            constants[value] = len(ops) - 1
        return constants[value]

    for i, op in enumerate(original):
        if op != "exp":
            continue
        inner = args[i][0]
        if original[inner] == "add" and all(t in exp_of and exp_of[t] < i for t in args[inner]):
            ops[i], args[i] = "mul", tuple(exp_of[t] for t in args[inner])
        elif (original[inner] == "mul" and len(args[inner]) == 2 and num(args[inner][0]) is not None
              and num(args[inner][0]).denominator == 1 and 2 <= abs(num(args[inner][0])) <= 4
              and args[inner][1] in exp_of and exp_of[args[inner][1]] < i):
            ops[i], args[i] = "pow", (exp_of[args[inner][1]], constant(num(args[inner][0])))
    return ops, args, data


def _live(ops: list, args: list, outputs: Sequence[int]) -> list[bool]:
    """Nodes some output depends on (a rewrite can leave others unused)."""
    live = [False] * len(ops)
    for o in outputs:
        live[o] = True
    for i in range(len(ops) - 1, -1, -1):
        if live[i]:
            for a in args[i]:
                live[a] = True
    return live


def _constant(op: str, data) -> tuple[Any, float]:
    """(longdouble value, relative error bound) of a leaf that is not an input."""
    if op == "num":
        return _ld_of_fraction(data)
    if op == "float":
        sign, man, exp, _ = data[0]
        if man == 0:
            return LD(0), 0.0
        if man < 2 ** 63 and -16000 < exp < 16000:
            return LD(-man if sign else man) * LD(2) ** exp, 0.0  # exact
        with mpmath.workprec(max(man.bit_length(), 80) + 10):
            return LD(mpmath.nstr(mpmath.mpf(data[0]), 30)), U
    if op == "const":
        with mpmath.workdps(40):
            return LD(mpmath.nstr(mpmath.pi if data == "pi" else mpmath.e, 30)), U
    if op == "bool":
        return LD(1 if data else 0), 0.0
    return LD("nan"), math.inf  # special, foreign: no value here


@functools.lru_cache(maxsize=4096)
def _ld_of_fraction(q: Fraction) -> tuple[Any, float]:
    p, d = q.numerator, q.denominator
    if d & (d - 1) == 0 and abs(p).bit_length() <= 63 and d.bit_length() < 16000:
        return LD(p) / LD(d), 0.0  # a dyadic rational with a short numerator: exact
    with mpmath.workdps(40):
        return LD(mpmath.nstr(mpmath.mpf(p) / d, 30)), U


# --- the vectorized evaluation ----------------------------------------------------------------

def evaluate(p: Plan, inputs: np.ndarray, trust: float = TRUST,
             bounds: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``inputs`` (P, nsym) float64 → (values (P, n_out) float64, proven (P, n_out) bool):
    each value rounded from extended precision, proven where its bound shows it within one
    float64 ulp of the exact value (within a relative ``trust``, when a caller needs less).
    ``bounds``, when given (P, n_out), receives every value's relative error bound."""
    count = inputs.shape[0]
    n_out = len(p.outputs)
    values = np.empty((count, n_out), dtype=np.float64)
    proven = np.empty((count, n_out), dtype=bool)
    step = max(1, min(count, CHUNK_CELLS // max(p.n, 1)))
    # one set of registers for all chunks: fresh pages cost more than the arithmetic on them
    buffers = (np.empty((p.n, step), dtype=LD), np.empty((p.n, step), dtype=np.float64))
    with np.errstate(all="ignore"):
        for start in range(0, count, step):
            stop = min(count, start + step)
            V, R = _evaluate_chunk(p, inputs[start:stop], buffers)
            # registers hold one node per row; results want one point per row: transpose a
            # cache-sized block of entries at a time (a whole-array transposed copy walks
            # memory with a huge stride, 10x slower on big Jacobians)
            for j in range(0, n_out, 256):
                nodes = p.outputs[j:j + 256]
                f = values[start:stop, j:j + 256]
                f[...] = V[nodes].T                        # rounded once to float64
                ok = proven[start:stop, j:j + 256]
                np.less_equal(R[nodes].T, trust, out=ok)
                if bounds is not None:
                    bounds[start:stop, j:j + 256] = R[nodes].T
                wide = ok & ~np.isfinite(f)
                if wide.any():  # beyond float64: ±inf is right only well beyond its largest value
                    rows, cols = np.nonzero(wide)
                    big = V[nodes[cols], rows]
                    ok[rows, cols] = np.isfinite(big) & (np.abs(big) >= 2 * LD(F64_MAX))
                    ok[np.isnan(f)] = False
    return values, proven


def _evaluate_chunk(p: Plan, inputs: np.ndarray, buffers=None) -> tuple[np.ndarray, np.ndarray]:
    count = inputs.shape[0]
    if buffers is not None and buffers[0].shape[1] == count:
        V, R = buffers
    else:
        V = np.empty((p.n, count), dtype=LD)
        R = np.empty((p.n, count), dtype=np.float64)
    if len(p.sym_nodes):
        V[p.sym_nodes] = inputs.T[p.sym_cols]
        R[p.sym_nodes] = 0.0
    if len(p.const_nodes):
        V[p.const_nodes] = p.const_values[:, None]
        R[p.const_nodes] = p.const_bounds[:, None]
    for g in p.groups:
        k, arity = g.kids.shape
        rows = max(1, GATHER_CELLS // max(arity * count, 1))
        first = int(g.out[0])
        for s in range(0, k, rows):
            block = slice(first + s, first + min(k, s + rows))
            part = g if k <= rows else _part(g, s, s + rows)
            if g.op == "mul":
                _k_mul(V, R, part.kids, part, out=block)
            else:
                V[block], R[block] = _KERNELS[g.op](V, R, part.kids, part)
            if g.op not in _DECIDED:  # ±inf or NaN in extended precision: nothing proven
                bounds = R[block]
                bounds[~np.isfinite(V[block])] = np.inf
    return V, R


def _part(g: _Group, start: int, stop: int) -> _Group:
    """Rows start:stop of a group (a big group is evaluated a block at a time)."""
    cut = (lambda a: None if a is None else a[start:stop])
    return _Group(g.op, g.out[start:stop], g.kids[start:stop], g.extra, cut(g.roundings), cut(g.factor),
                  cut(g.factor_bound))


def _rel(abs_bound: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A relative bound from an absolute one: 0/0 is an exact zero, x/0 and NaN are unproven."""
    mag = np.abs(v)
    r = np.where(mag > 0, abs_bound / np.where(mag > 0, mag, 1), np.where(abs_bound == 0, 0.0, np.inf))
    r = r.astype(np.float64)
    r[~(r <= 1e300)] = np.inf
    return r


def _k_add(V, R, kids, g):
    T = V[kids]                                  # (k, a, P)
    mag = np.abs(T)
    carried = (mag * R[kids]).sum(axis=1)        # the inputs' own errors
    a = T.shape[1]
    m = a
    while m > 1:                                 # pairwise: rounding grows with log2(a)
        h = m // 2
        T[:, :h] += T[:, m - h:m]
        m -= h
    v = T[:, 0]
    depth = max(1, math.ceil(math.log2(a)))
    rounding = U * np.abs(v) if a == 2 else depth * U * mag.sum(axis=1)
    return v, _rel(carried + rounding, v)


def _k_mul(V, R, kids, g, out=None):
    a = kids.shape[1]
    if out is None:
        v = np.empty((len(kids), V.shape[1]), dtype=V.dtype)
        r = np.empty((len(kids), V.shape[1]))
    else:
        v, r = V[out], R[out]
    if a == 1:
        v[...] = V[kids[:, 0]]
    else:
        np.multiply(V[kids[:, 0]], V[kids[:, 1]], out=v)
    for j in range(2, a):
        v *= V[kids[:, j]]
    if g.factor is not None:
        v *= g.factor
    np.add(R[kids[:, 0]], g.roundings * U, out=r)
    for j in range(1, a):
        r += R[kids[:, j]]
    if g.factor_bound is not None:
        r += g.factor_bound
    zero = v == 0
    if zero.any():  # exact when a factor is an exact zero and the others are known; else an underflow
        exact_zero = np.zeros(v.shape, dtype=bool)
        for j in range(a):
            exact_zero |= (V[kids[:, j]] == 0) & (R[kids[:, j]] == 0)
        exact_zero &= r < np.inf
        r[zero & ~exact_zero] = np.inf
        r[exact_zero] = 0.0
    return v, r


def _k_pow(V, R, kids, g):
    b, rb = V[kids[:, 0]], R[kids[:, 0]]
    k = g.extra
    if k is None:                                # a variable exponent: b**e = exp(e log b)
        e, re_ = V[kids[:, 1]], R[kids[:, 1]]
        v = np.power(b, e)
        r = (re_ * np.abs(e) * np.abs(np.log(np.abs(b))) + np.abs(e) * rb).astype(np.float64) + 4 * U
        return v, _finish(v, r, exact_zero=np.zeros(v.shape, dtype=bool))
    if k == 2:
        v, c = b * b, U
    elif k == -1:
        v, c = 1 / b, U
    elif k == -2:
        v, c = 1 / (b * b), 2 * U
    elif k == Fraction(1, 2):
        v, c = np.sqrt(b), U
    elif k == Fraction(-1, 2):
        v, c = 1 / np.sqrt(b), 2 * U
    elif k.denominator == 1:
        v, c = np.power(b, LD(k.numerator)), 4 * U
    else:                                        # the exponent itself is rounded
        v = np.power(b, LD(k.numerator) / LD(k.denominator))
        c = (4 * U + abs(float(k)) * U * np.abs(np.log(np.abs(b)))).astype(np.float64)
    r = abs(float(k)) * rb + c
    return v, _finish(v, r, exact_zero=(b == 0) & (rb == 0) & (k > 0))


def _finish(v, r, exact_zero):
    """A power's bound: a zero result is exact only when the base is an exact zero."""
    r = np.array(np.broadcast_to(r, v.shape), dtype=np.float64)
    r[(v == 0) & ~exact_zero] = np.inf
    r[exact_zero] = 0.0
    r[~(r <= 1e300)] = np.inf
    return r


def _k_unary(V, R, kids, g):
    t, rt = V[kids[:, 0]], R[kids[:, 0]]
    op = g.op
    at = rt * np.abs(t)                          # absolute error of the argument (ld)
    if op == "exp":
        v = np.exp(t)
        r = (at + 2 * U).astype(np.float64)
        r[v == 0] = np.inf
        r[~(r <= 1e300)] = np.inf
        return v, r
    if op == "abs":
        return np.abs(t), rt.copy()
    if op in ("sign", "dirac"):
        decided = (rt < 1) | ((t == 0) & (rt == 0))
        if op == "sign":
            v = np.sign(t)
        else:                                    # 0 away from the kink, undefined at it
            v = np.where(t != 0, LD(0), LD("nan"))
        return v, np.where(decided, 0.0, np.inf)
    if op == "erf":
        return np.full(t.shape, LD("nan")), np.full(t.shape, np.inf)
    if op == "sech2":                            # c / cosh(t)²: cosh's relative error is ≤ |t|·δt
        c, rc = _ld_of_fraction(g.extra)
        v = c / np.square(np.cosh(t))
        r = (2 * at + 6 * U).astype(np.float64) + rc
        r[v == 0] = np.inf
        r[~(r <= 1e300)] = np.inf
        return v, r
    fn, slope = _SLOPES[op]
    v = fn(t)
    return v, _rel(slope(t, v) * at + 2 * U * np.abs(v), v)


_SLOPES = {  # (kernel, a bound on |f'(t)| given t and f(t))
    "log": (np.log, lambda t, v: 1 / np.abs(t)),
    "log1p": (np.log1p, lambda t, v: 1 / np.abs(1 + t)),
    "expm1": (np.expm1, lambda t, v: np.abs(v) + 1),
    "sin": (np.sin, lambda t, v: 1),
    "cos": (np.cos, lambda t, v: 1),
    "tan": (np.tan, lambda t, v: 1 + v * v),
    "sinh": (np.sinh, lambda t, v: np.abs(v) + 1),
    "cosh": (np.cosh, lambda t, v: np.abs(v)),
    "tanh": (np.tanh, lambda t, v: 1),
    "asinh": (np.arcsinh, lambda t, v: 1 / np.sqrt(1 + t * t)),
    "atan": (np.arctan, lambda t, v: 1 / (1 + t * t)),
}


def _k_heaviside(V, R, kids, g):
    t, rt = V[kids[:, 0]], R[kids[:, 0]]
    h0, rh = V[kids[:, 1]], R[kids[:, 1]]
    v = np.where(t > 0, LD(1), np.where(t < 0, LD(0), h0))
    decided = (rt < 1) | ((t == 0) & (rt == 0))
    return v, np.where(decided, np.where(t == 0, rh, 0.0), np.inf)


def _k_extreme(V, R, kids, g):
    T = V[kids]
    v = T.max(axis=1) if g.op == "max" else T.min(axis=1)
    return v, _rel((np.abs(T) * R[kids]).max(axis=1), v)   # max and min are 1-Lipschitz


def _k_piecewise(V, R, kids, g):
    E, C = kids[:, 0::2], kids[:, 1::2]
    taken = V[C] != 0                            # (k, branches, P)
    unsure = R[C] != 0
    first = np.argmax(taken, axis=1)             # the first true condition
    any_taken = taken.any(axis=1)
    pick = first[:, None, :]
    v = np.take_along_axis(V[E], pick, axis=1)[:, 0]
    r = np.take_along_axis(R[E], pick, axis=1)[:, 0].copy()
    branch = np.arange(C.shape[1])[None, :, None]
    undecided = (unsure & (branch <= pick)).any(axis=1)
    r[undecided] = np.inf
    v[~any_taken] = LD("nan")
    return v, r


def _k_relation(V, R, kids, g):
    a, b = V[kids[:, 0]], V[kids[:, 1]]
    ra, rb = R[kids[:, 0]], R[kids[:, 1]]
    d = a - b
    carried = ra * np.abs(a) + rb * np.abs(b)
    decided = ((ra == 0) & (rb == 0)) | (np.abs(d) > 2 * carried)
    v = _RELATION[g.op](d, 0).astype(LD)
    return v, np.where(decided, 0.0, np.inf)


def _k_logic(V, R, kids, g):
    T = V[kids] != 0
    if g.op == "and":
        v = T.all(axis=1)
    elif g.op == "or":
        v = T.any(axis=1)
    else:
        v = ~T[:, 0]
    return v.astype(LD), np.where((R[kids] != 0).any(axis=1), np.inf, 0.0)


# kernels whose value is a decision (0/1, a sign, a chosen branch), never a new infinity
_DECIDED = frozenset({"sign", "heaviside", "dirac", "piecewise", "and", "or", "not", *_RELATION})

_KERNELS = {"add": _k_add, "mul": _k_mul, "pow": _k_pow, "heaviside": _k_heaviside,
            "max": _k_extreme, "min": _k_extreme, "piecewise": _k_piecewise,
            "and": _k_logic, "or": _k_logic, "not": _k_logic}
_KERNELS.update({op: _k_unary for op in _UNARY})
_KERNELS.update({op: _k_relation for op in _RELATION})


# --- the log-domain pass: beyond the extended range ---------------------------------------------
#
# sigmoid(−65504) is 1/(1 + e⁶⁵⁵⁰⁴): e⁶⁵⁵⁰⁴ overflows even the extended range (e¹¹³⁵⁶), so the
# linear pass proves nothing there. Points where it proved nothing are evaluated again with
# every value held as (sign, ln|x|) and a bound on the absolute error of ln|x|: e⁶⁵⁵⁰⁴ is just
# ln = 65504, and the result ln ≈ −65504 proves that float64 rounds the exact value to zero.
# Operations with a rule here (sums, products, powers, exp, log, log1p, expm1, sech², tanh,
# abs) work in that form; any other reads its arguments back in linear form, if they fit.

LN_UNDERFLOW = math.log(2.0) * -1075      # below: float64 rounds to ±0
LN_OVERFLOW = math.log(F64_MAX) + 2.0 ** -53  # above: float64 rounds to ±inf
LN_LD_MAX = float(np.log(np.finfo(LD).max)) - 2  # e^L fits the extended range below this


def _to_log(v, r):
    """Linear (value, relative bound) → (sign, ln|x|, absolute bound on ln|x|)."""
    S = np.sign(v).astype(np.int8)
    mag = np.abs(v)
    L = np.log(mag)
    E = (r + 2 * U * (np.abs(L) + 1)).astype(np.float64)
    exact_zero = (v == 0) & (r == 0)
    E[exact_zero] = 0.0
    S[v == 0] = 0
    E[(v == 0) & ~exact_zero] = np.inf
    E[~np.isfinite(mag)] = np.inf
    E[~(E <= 1e300)] = np.inf
    return S, L, E


def _from_log(S, L, E):
    """(sign, ln|x|, bound) → linear (value, relative bound); inf where it does not fit."""
    v = S * np.exp(L)
    r = (E * (1 + E) + 2 * U * (np.abs(L) + 1)).astype(np.float64)
    zero = S == 0
    r[zero] = np.where(E[zero] == 0, 0.0, np.inf)
    v[zero] = 0
    r[~zero & ~(np.abs(L) < LN_LD_MAX)] = np.inf
    r[~(r <= 1e300)] = np.inf
    return v, r


def _l_add(S, L, E, kids, g):
    Sk, Lk, Ek = S[kids], L[kids], E[kids]
    live = Sk != 0
    Lmax = np.where(live, Lk, -np.inf).max(axis=1)
    shift = np.where(live, Lk - Lmax[:, None], -np.inf)
    W = Sk * np.exp(shift)                       # each |W| ≤ 1
    err = (np.abs(W) * (Ek + 2 * U * (np.abs(shift) + 1))).sum(axis=1)
    a = W.shape[1]
    depth = max(1, math.ceil(math.log2(a)))
    mag = np.abs(W).sum(axis=1)
    total = W.sum(axis=1)
    rel = (err + depth * U * mag) / np.abs(total)
    out_S = np.sign(total).astype(np.int8)
    out_L = Lmax + np.log(np.abs(total))
    out_E = (rel + 2 * U * (np.abs(Lmax) + np.abs(np.log(np.abs(total))) + 2)).astype(np.float64)
    all_exact_zero = (~live & (Ek == 0)).all(axis=1)
    out_E[~np.isfinite(Lmax) | (total == 0)] = np.inf
    out_E[~(Ek <= 1e300).all(axis=1)] = np.inf
    out_S[all_exact_zero], out_E[all_exact_zero] = 0, 0.0
    return out_S, out_L, out_E


def _l_mul(S, L, E, kids, g):
    Sk, Lk, Ek = S[kids], L[kids], E[kids]
    factor = g.factor[:, 0] if g.factor is not None else np.ones(len(kids), dtype=LD)
    factor_bound = g.factor_bound if g.factor_bound is not None else 0.0
    out_S = (Sk.prod(axis=1) * np.sign(factor)[:, None]).astype(np.int8)
    ln_factor = np.log(np.abs(factor))[:, None]
    out_L = Lk.sum(axis=1) + ln_factor
    out_E = (Ek.sum(axis=1) + (Lk.shape[1] + 1) * U * (np.abs(Lk).sum(axis=1) + np.abs(ln_factor))
             + factor_bound).astype(np.float64)
    exact_zero = ((Sk == 0) & (Ek == 0)).any(axis=1) & (Ek < np.inf).all(axis=1)
    out_E[~(out_E <= 1e300)] = np.inf
    out_E[exact_zero], out_S[exact_zero] = 0.0, 0
    return out_S, out_L, out_E


def _l_pow(S, L, E, kids, g):
    k = g.extra
    Sb, Lb, Eb = S[kids[:, 0]], L[kids[:, 0]], E[kids[:, 0]]
    if k is None:
        return Sb, Lb, np.full(Eb.shape, np.inf)
    kl = LD(k.numerator) / LD(k.denominator)
    out_L = kl * Lb
    out_E = (abs(float(k)) * Eb + 3 * U * (np.abs(out_L) + 1)).astype(np.float64)
    if k.denominator == 1:
        out_S = np.where(Sb < 0, (-1) ** (k.numerator % 2), Sb).astype(np.int8)
    else:
        out_S = Sb.copy()
        out_E[Sb < 0] = np.inf
    zero = Sb == 0
    out_E[zero] = np.where((Eb[zero] == 0) & (k > 0), 0.0, np.inf)
    out_E[~(out_E <= 1e300)] = np.inf
    return out_S, out_L, out_E


def _linear_arg(S, L, E, kids):
    t, rt = _from_log(S[kids[:, 0]], L[kids[:, 0]], E[kids[:, 0]])
    return t, rt


def _l_exp(S, L, E, kids, g):
    t, rt = _linear_arg(S, L, E, kids)
    huge = (S[kids[:, 0]] != 0) & (L[kids[:, 0]] >= LN_LD_MAX) & (E[kids[:, 0]] < 1)
    out_L = t.copy()
    out_E = (rt * np.abs(t) + U * np.abs(t)).astype(np.float64)
    out_L[huge] = np.where(S[kids[:, 0]][huge] > 0, np.inf, -np.inf)
    out_E[huge] = 0.0                             # e^(±huge): beyond every bound, exactly so
    out_E[~(out_E <= 1e300)] = np.inf
    return np.ones(t.shape, dtype=np.int8), out_L, out_E


def _l_log(S, L, E, kids, g):
    St, Lt, Et = S[kids[:, 0]], L[kids[:, 0]], E[kids[:, 0]]
    if g.op == "log1p":
        big = (St > 0) & (Lt > 45)               # log1p(t) = ln t + log1p(1/t)
        t, rt = _linear_arg(S, L, E, kids)
        y = np.where(big, Lt + np.exp(-Lt), np.log1p(t))
        ay = np.where(big, Et + np.exp(-2 * Lt), np.abs(t) / np.abs(1 + t) * rt + 2 * U * np.abs(y))
        ay = np.where(big | (t > -1), ay, np.inf)
    else:
        y = Lt
        ay = np.where(St > 0, Et + 0 * Lt, np.inf)
    out_S, out_L, out_E = _to_log(y, _rel(ay, y))
    return out_S, out_L, out_E


def _l_expm1(S, L, E, kids, g):
    t, rt = _linear_arg(S, L, E, kids)
    big = t > 45                                 # e^t − 1 = e^t (1 − e^−t)
    y = np.expm1(np.where(big, 0, t))
    r_lin = _rel((np.abs(y) + 1) * rt * np.abs(t) + 2 * U * np.abs(y), y)
    out_S, out_L, out_E = _to_log(y, r_lin)
    out_S[big], out_L[big] = 1, t[big]
    out_E[big] = (rt[big] * np.abs(t[big]) + U * np.abs(t[big]) + 2 * np.exp(-t[big])).astype(np.float64)
    out_E[~(out_E <= 1e300)] = np.inf
    return out_S, out_L, out_E


def _l_sech2(S, L, E, kids, g):
    c, rc = _ld_of_fraction(g.extra)
    t, rt = _linear_arg(S, L, E, kids)
    a = np.abs(t)
    out_L = np.log(4 * np.abs(c)) - 2 * a - 2 * np.log1p(np.exp(-2 * a))
    out_E = (2 * a * rt + 2 * U * (np.abs(out_L) + 4) + rc).astype(np.float64)
    huge = (S[kids[:, 0]] != 0) & (L[kids[:, 0]] >= LN_LD_MAX) & (E[kids[:, 0]] < 1)
    out_L[huge], out_E[huge] = -np.inf, 0.0
    out_E[~(out_E <= 1e300)] = np.inf
    return np.full(t.shape, np.sign(float(g.extra)), dtype=np.int8), out_L, out_E


def _l_tanh(S, L, E, kids, g):
    t, rt = _linear_arg(S, L, E, kids)
    v = np.tanh(t)
    out = _to_log(v, _rel(rt * np.abs(t) + 2 * U * np.abs(v), v))
    huge = (S[kids[:, 0]] != 0) & (L[kids[:, 0]] >= LN_LD_MAX) & (E[kids[:, 0]] < 1)
    out[0][huge], out[1][huge], out[2][huge] = S[kids[:, 0]][huge], 0, U
    return out


def _l_abs(S, L, E, kids, g):
    return np.abs(S[kids[:, 0]]), L[kids[:, 0]].copy(), E[kids[:, 0]].copy()


_LOG_KERNELS = {"add": _l_add, "mul": _l_mul, "pow": _l_pow, "exp": _l_exp, "log": _l_log,
                "log1p": _l_log, "expm1": _l_expm1, "sech2": _l_sech2, "tanh": _l_tanh, "abs": _l_abs}


def evaluate_log(p: Plan, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The log-domain pass at the rows of ``inputs``: (float64 values, proven) per entry."""
    count = inputs.shape[0]
    n_out = len(p.outputs)
    values = np.zeros((count, n_out))
    proven = np.zeros((count, n_out), dtype=bool)
    step = max(1, min(count, CHUNK_CELLS // max(2 * p.n, 1)))
    with np.errstate(all="ignore"):
        for start in range(0, count, step):
            stop = min(count, start + step)
            v, ok = _evaluate_log_chunk(p, inputs[start:stop])
            values[start:stop], proven[start:stop] = v, ok
    return values, proven


def _evaluate_log_chunk(p: Plan, inputs: np.ndarray):
    count = inputs.shape[0]
    S = np.zeros((p.n, count), dtype=np.int8)
    L = np.empty((p.n, count), dtype=LD)
    E = np.empty((p.n, count), dtype=np.float64)
    V = np.empty((p.n, count), dtype=LD)          # the same values in linear form, where they fit
    R = np.empty((p.n, count), dtype=np.float64)
    if len(p.sym_nodes):
        x = inputs.T[p.sym_cols].astype(LD)
        V[p.sym_nodes], R[p.sym_nodes] = x, 0.0
        S[p.sym_nodes], L[p.sym_nodes], E[p.sym_nodes] = _to_log(x, np.zeros(x.shape))
    if len(p.const_nodes):
        c = np.broadcast_to(p.const_values[:, None], (len(p.const_nodes), count))
        rc = np.broadcast_to(p.const_bounds[:, None], c.shape)
        V[p.const_nodes], R[p.const_nodes] = c, rc
        S[p.const_nodes], L[p.const_nodes], E[p.const_nodes] = _to_log(c, rc)
    for g in p.groups:
        kernel = _LOG_KERNELS.get(g.op)
        if kernel is not None:
            S[g.out], L[g.out], E[g.out] = kernel(S, L, E, g.kids, g)
            V[g.out], R[g.out] = _from_log(S[g.out], L[g.out], E[g.out])
        else:
            V[g.out], R[g.out] = _KERNELS[g.op](V, R, g.kids, g)
            S[g.out], L[g.out], E[g.out] = _to_log(V[g.out], R[g.out])
    So, Lo, Eo = S[p.outputs].T, L[p.outputs].T, E[p.outputs].T
    values = np.zeros(So.shape)
    zero = (So == 0) & (Eo == 0)
    tiny = (So != 0) & (Lo + Eo < LN_UNDERFLOW)
    huge = (So != 0) & (Lo - Eo > LN_OVERFLOW) & (Eo < 1)
    v, r = _from_log(So, Lo, Eo)
    normal = ~zero & ~tiny & ~huge & (r <= TRUST) & (np.abs(v) <= F64_MAX)
    values[normal] = v[normal].astype(np.float64)
    values[tiny] = np.copysign(0.0, So[tiny])
    values[huge] = np.copysign(np.inf, So[huge])
    return values, zero | tiny | huge | normal


# --- the exact path: mpmath on the same graph --------------------------------------------------

WORK_DPS = (30, 45)       # the lambdified oracle's two precisions (reference.MpmathEvaluator)
MAX_DPS = 400
PROOF_DPS = (30, 4000)    # the graph evaluator: first and last precision of its proofs
FIRST_DPS_CAP = 400       # the most a first evaluation starts at (see _first_precision)
AGREE = mpmath.mpf("1e-25")


def _dirac(x, *order):
    return mpmath.mpf(0) if x != 0 else mpmath.nan


def _heaviside(x, h0=0.5):
    if x > 0:
        return mpmath.mpf(1)
    if x < 0:
        return mpmath.mpf(0)
    return mpmath.mpf(h0)


_MP_UNARY = {"exp": mpmath.exp, "log": mpmath.log, "sin": mpmath.sin, "cos": mpmath.cos,
             "tan": mpmath.tan, "sinh": mpmath.sinh, "cosh": mpmath.cosh, "tanh": mpmath.tanh,
             "asinh": mpmath.asinh, "atan": mpmath.atan, "erf": mpmath.erf, "abs": mpmath.fabs,
             "sign": lambda x: mpmath.mpf(mpmath.sign(x)), "log1p": mpmath.log1p,
             "expm1": mpmath.expm1}
_MP_SLOPES = {  # a bound on |f'(t)| from t and f(t)
    "exp": lambda t, v: abs(v), "log": lambda t, v: 1 / abs(t), "log1p": lambda t, v: 1 / abs(1 + t),
    "expm1": lambda t, v: abs(v) + 1, "sin": lambda t, v: 1, "cos": lambda t, v: 1,
    "tan": lambda t, v: 1 + v * v, "sinh": lambda t, v: abs(v) + 1, "cosh": lambda t, v: abs(v),
    "tanh": lambda t, v: 1, "asinh": lambda t, v: 1, "atan": lambda t, v: 1, "erf": lambda t, v: 2,
    "abs": lambda t, v: 1,
}
_MP_RELATION = {"gt": lambda a, b: a > b, "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b,
                "le": lambda a, b: a <= b, "eq": lambda a, b: a == b, "ne": lambda a, b: a != b}
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
                    found.append((_as_mp(value), bound))
                return found
        finally:
            sys.setrecursionlimit(limit)

    def _node(self, i: int, memo: dict, row: list):
        if i in memo:
            return memo[i]
        try:
            value = self._compute(i, memo, row)
        except _ERRORS:
            value = (None, 0)
        if value[0] is not None and isinstance(value[0], mpmath.mpc):  # complex: undefined here
            value = (None, value[1]) if value[0].imag != 0 else (value[0].real, value[1])
        memo[i] = value
        return value

    def _compute(self, i: int, memo: dict, row: list):
        """(value, bound on its absolute error) of node i; value None when undefined."""
        op, kids, data = self.ops[i], self.args[i], self.data[i]
        u = self._u
        if op == "sym":
            return row[data], 0
        if op == "num":
            v = mpmath.mpf(data.numerator) / mpmath.mpf(data.denominator)
            return v, (0 if data.denominator & (data.denominator - 1) == 0 else u * abs(v))
        if op == "float":
            v = mpmath.mpf(data[0])
            return v, (0 if data[0][3] <= mpmath.mp.prec else u * abs(v))
        if op == "const":
            v = +mpmath.pi if data == "pi" else +mpmath.e
            return v, u * v
        if op == "special":
            return {"oo": mpmath.inf, "-oo": -mpmath.inf}.get(data), 0
        if op == "bool":
            return bool(data), 0
        if op == "foreign":  # no error analysis for an arbitrary function: trust 3/4 of the digits
            v = self._foreign_value(i, row)
            return v, (None if v is None else abs(v) * mpmath.ldexp(1, -(3 * mpmath.mp.prec) // 4))
        if op == "piecewise":
            for e, c in zip(kids[0::2], kids[1::2]):
                cond, unsure = self._node(c, memo, row)
                if cond is None:
                    return None, 0
                if cond:
                    v, a = self._node(e, memo, row)
                    return v, (mpmath.inf if unsure else a)
                if unsure:
                    v, a = self._node(e, memo, row)
                    return v, mpmath.inf
            return None, 0
        vals = [self._node(a, memo, row) for a in kids]
        if any(v is None for v, _ in vals):
            return None, 0
        if any(isinstance(v, mpmath.mpc) for v, _ in vals):
            return None, 0
        if op in ("add", "mul") and all(a == 0 for _, a in vals):
            # exact operands (inputs, their sums and products): compute exactly, then round
            # once, so that 2 − a − b at a = b = 1 is a proven zero, not an unknown one
            combine = mpmath.fadd if op == "add" else mpmath.fmul
            exact = vals[0][0]
            for v, _ in vals[1:]:
                exact = combine(exact, v, exact=True)
            total = +exact
            return total, abs(mpmath.fsub(exact, total, exact=True))
        if op == "add":
            total, bound, size = vals[0][0], vals[0][1], abs(vals[0][0])
            for v, a in vals[1:]:
                total = total + v
                bound += a
                size += abs(v)
            return total, bound + (len(vals) - 1) * u * size
        if op == "mul":
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
            return total, bound + (len(vals) - 1) * u * abs(total)
        if op == "pow":
            (base, ab), (exp, ae) = vals
            k = self.data[kids[1]] if self.ops[kids[1]] == "num" else None
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
            return v, slope + 2 * u * abs(v)
        if op == "sech2":
            (t, at), = vals
            v = (mpmath.mpf(data.numerator) / data.denominator) * mpmath.sech(t) ** 2
            return v, 2 * abs(v) * at + 4 * u * abs(v)
        if op in _MP_UNARY:
            (t, at), = vals
            if op in ("log", "log1p") and at and abs(t + (1 if op == "log1p" else 0)) <= at:
                return None, mpmath.inf  # near the branch point with an unknown sign
            v = _MP_UNARY[op](t)
            if isinstance(v, mpmath.mpc):
                return v, 0
            if op in ("sign",):
                return v, (0 if (t == 0 and at == 0) or abs(t) > at else mpmath.inf)
            if mpmath.isinf(v):
                return v, 0
            return v, (_MP_SLOPES[op](t, v) * at if at else 0) + 2 * u * abs(v)
        if op == "heaviside":
            (t, at), (h0, ah) = vals
            decided = (t == 0 and at == 0) or abs(t) > at
            return _heaviside(t, h0), ((ah if t == 0 else 0) if decided else mpmath.inf)
        if op == "dirac":
            (t, at), = vals
            if t == 0 and at == 0:
                return None, 0
            return mpmath.mpf(0), (0 if abs(t) > at else mpmath.inf)
        if op in ("max", "min"):
            pick = max if op == "max" else min
            return pick(v for v, _ in vals), max(a for _, a in vals)
        if op in _MP_RELATION:
            (a, aa), (b, ab) = vals
            decided = (aa == 0 and ab == 0) or abs(a - b) > 2 * (aa + ab)
            return _MP_RELATION[op](a, b), (0 if decided else 1)
        if op in ("and", "or", "not"):
            unsure = any(a for _, a in vals)
            truth = [bool(v) for v, _ in vals]
            value = all(truth) if op == "and" else any(truth) if op == "or" else not truth[0]
            return value, (1 if unsure else 0)
        raise ValueError(op)

    def _foreign_value(self, i: int, row: list):
        import sympy as sp

        from . import MODULES
        expr, cols = self.program.data[i]
        if i not in self._foreign:
            self._foreign[i] = sp.lambdify([self.symbols[c] for c in cols], expr, modules=MODULES)
        value = self._foreign[i](*(row[c] for c in cols))
        return _as_mp(value)


def _as_mp(value):
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
                return _as_mp(mpmath.mpmathify(sp.N(value, 50)))
            except (TypeError, ValueError):
                return None
        return None
    if mpmath.isnan(value):
        return None
    return value


SUBNORMAL_HALF = mpmath.ldexp(1, -1075)


def _first_precision(values: np.ndarray, rel_bounds: np.ndarray) -> int:
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


def _agree(a, b) -> bool:
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


# --- the whole reference ------------------------------------------------------------------------

@dataclass
class Stats:
    """How a reference was computed (for tests and the benchmark)."""

    entries: int = 0
    log_domain: int = 0     # entries proven by the log-domain pass
    exact: int = 0          # entries recomputed with mpmath

    def __iadd__(self, other: "Stats") -> "Stats":
        self.entries += other.entries
        self.log_domain += other.log_domain
        self.exact += other.exact
        return self


def magnitude(program: Program, symbols: Sequence[Any], inputs: np.ndarray,
              compiled: Plan | None = None, rel: float = 1e-6) -> tuple[float, Stats]:
    """The largest finite |exact value| of any entry at any row of ``inputs``, within a
    relative ``rel`` (0.0 when every value is exactly zero, or none is finite): a size, not a
    check, so no value needs proving unless it could be the largest.

    The extended-precision pass gives each value and a bound on its error. Values known
    within ``rel`` give a lower bound on the maximum; a value not known that well is passed
    to :func:`reference` (log domain, then mpmath) only when its upper bound exceeds that
    lower bound — an overflow, or a cancellation as large as the largest value. Values
    that cancel to nothing everywhere (the gradient of ``sum(softmax(x))``) all go there,
    since only mpmath can prove that they are zero."""
    count, n_out = inputs.shape[0], len(program.outputs)
    stats = Stats(entries=count * n_out)
    if count == 0 or n_out == 0:
        return 0.0, stats
    p = compiled or plan(program)
    bounds = np.empty((count, n_out))
    with np.errstate(all="ignore"):
        values, ok = evaluate(p, inputs, rel, bounds)
        size = np.abs(values)
        known = size[ok & np.isfinite(values)]
        floor = float(known.max()) if known.size else 0.0
        upper = np.where(np.isfinite(bounds) & np.isfinite(values), size * (1 + bounds), np.inf)
        open_ = ~ok & ~(upper <= floor)
    rows = np.flatnonzero(open_.any(axis=1))
    if len(rows):
        exact, kinds, more = reference(program, symbols, inputs[rows], p, need=open_[rows])
        stats.log_domain, stats.exact = more.log_domain, more.exact
        take = open_[rows] & (kinds == FINITE)
        if take.any():
            floor = max(floor, float(np.abs(exact[take]).max()))
    return floor, stats


def reference(program: Program, symbols: Sequence[Any], inputs: np.ndarray,
              compiled: Plan | None = None, need: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, Stats]:
    """Exact values of every entry of ``program`` at every row of ``inputs`` (P, nsym):
    (values (P, n) float64, kinds (P, n) int8, stats).

    ``need`` (P, n) bool, when given, limits the exact passes to those entries; the others
    keep their extended-precision values (:func:`magnitude` needs only the candidates for the
    largest value)."""
    count, n_out = inputs.shape[0], len(program.outputs)
    # all finite unless mpmath says otherwise: a read-only view until then (16 MB saved for a
    # Jacobian of 16 384 entries at 1000 points)
    kinds = np.broadcast_to(np.int8(FINITE), (count, n_out))
    stats = Stats(entries=count * n_out)
    if count == 0 or n_out == 0:
        return np.zeros((count, n_out)), kinds, stats
    p = compiled or plan(program)
    values, ok = evaluate(p, inputs)
    lanes = np.flatnonzero((~ok).any(axis=1))
    if len(lanes):
        again, proven = evaluate_log(p, inputs[lanes])
        take = proven & ~ok[lanes]
        rows = values[lanes]
        rows[take] = again[take]
        values[lanes] = rows
        okl = ok[lanes]
        okl |= take
        ok[lanes] = okl
        stats.log_domain = int(take.sum())
    bad_rows, bad_cols = np.nonzero(~ok if need is None else ~ok & need)
    stats.exact = len(bad_rows)
    if len(bad_rows):
        kinds = np.full((count, n_out), FINITE, dtype=np.int8)
        graph = MpmathGraph(program, symbols, p.nodes)
        splits = np.flatnonzero(np.diff(bad_rows)) + 1
        # the error bounds of the rows that need mpmath, to choose where it starts (kept for
        # these rows only: for all rows they would be one more array the size of the result)
        rows_needed = np.unique(bad_rows)
        bounds = np.empty((len(rows_needed), n_out))
        evaluate(p, inputs[rows_needed], TRUST, bounds)
        where = {int(r): k for k, r in enumerate(rows_needed)}
        for rows, cols in zip(np.split(bad_rows, splits), np.split(bad_cols, splits)):
            i = int(rows[0])
            exact = graph.entries(inputs[i], [int(c) for c in cols],
                                  _first_precision(values[i, cols], bounds[where[i], cols]))
            for c, value in zip(cols, exact):
                values[i, c], kinds[i, c] = classify(value)
    return values, kinds, stats
