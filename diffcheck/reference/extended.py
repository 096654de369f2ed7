"""Extended precision, vectorized: every node of a plan for all points at once.

Every node is evaluated for all points as one numpy operation in ``numpy.longdouble``
(64-bit significand, exponents to ±4932 on x86-64: exp(1000) is an ordinary number), level
by level, all nodes of one kind and level in one operation. Alongside each value runs a
bound on its relative error (running error analysis): the inputs' errors carried through the
operation's condition number (the error slopes of :mod:`diffcheck.symbolic.ops`), plus its
own rounding; sums are added pairwise. An op the table declares a gap for is left unproven
here, and mpmath computes it.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from ..symbolic.ops import elementwise, gaps, structural
from .plan import F64_MAX, LD, TRUST, U, Group, Plan, ld_of_fraction

CHUNK_CELLS = 1 << 21                     # nodes × points held at once (≈ 50 MB)
GATHER_CELLS = 1 << 22                    # children × points gathered at once

_RELATION = {"gt": np.greater, "ge": np.greater_equal, "lt": np.less, "le": np.less_equal,
             "eq": np.equal, "ne": np.not_equal}


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
            V, R = evaluate_chunk(p, inputs[start:stop], buffers)
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


def evaluate_chunk(p: Plan, inputs: np.ndarray, buffers=None) -> tuple[np.ndarray, np.ndarray]:
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
            elif g.op == "add" and p.as_written:
                V[block], R[block] = _k_add(V, R, part.kids, part, any_order=True)
            else:
                V[block], R[block] = KERNELS[g.op](V, R, part.kids, part)
            if g.op not in _DECIDED:  # ±inf or NaN in extended precision: nothing proven
                bounds = R[block]
                bounds[~np.isfinite(V[block])] = np.inf
    return V, R


def _part(g: Group, start: int, stop: int) -> Group:
    """Rows start:stop of a group (a big group is evaluated a block at a time)."""
    cut = (lambda a: None if a is None else a[start:stop])
    return Group(g.op, g.out[start:stop], g.kids[start:stop], g.extra, cut(g.roundings), cut(g.factor),
                  cut(g.factor_bound))


def relative(abs_bound: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A relative bound from an absolute one: 0/0 is an exact zero, x/0 and NaN are unproven."""
    mag = np.abs(v)
    r = np.where(mag > 0, abs_bound / np.where(mag > 0, mag, 1), np.where(abs_bound == 0, 0.0, np.inf))
    r = r.astype(np.float64)
    r[~(r <= 1e300)] = np.inf
    return r


def sum_roundings(a: int) -> float:
    """How many roundings of Σ|terms| a sum of ``a`` terms is granted when it models the
    code under test (``any_order``): the worst case a − 1 of any summation order for a few
    terms; beyond, √a, the statistical growth of recursive (loop) summation, and never less
    than the pairwise depth ⌈log₂ a⌉ of torch.sum. Measured (recursive summation of uniform
    terms in [0, 1] and [-1, 1], 40 sums each; error ÷ u·Σ|terms|): n = 100: 6.1 (float32),
    4.1 (float16); n = 1000: 22.7, 15.4; n = 10⁴: 50.6 (float32); torch.sum: at most 2.1.
    The worst case a − 1 (γₙ) would grant a float16 sum of 1000 terms 49 % of Σ|terms|:
    no wrong formula could fail there."""
    if a <= 2:
        return 1.0
    return float(min(a - 1, max(math.ceil(math.log2(a)), math.sqrt(a))))


def _k_add(V, R, kids, g, any_order: bool = False):
    """A sum, added pairwise in extended precision. Its rounding bound is that pairwise
    order's, or with ``any_order`` (the as-written plan, a model of the dtype's evaluation)
    :func:`sum_roundings`: the code under test may add in a loop."""
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
    depth = sum_roundings(a) if any_order else max(1, math.ceil(math.log2(a)))
    rounding = U * np.abs(v) if a == 2 else depth * U * mag.sum(axis=1)
    bound = carried + rounding
    if any_order:
        # terms that cancel below extended precision leave v = 0 with a nonzero error bound:
        # as a model of the dtype's evaluation that is |v| <= bound, wholly uncertain (R = 1),
        # so that the bound still reaches the result (else it is lost as bound/0 = inf)
        lost = (v == 0) & (bound > 0)
        if lost.any():
            v = np.where(lost, bound.astype(v.dtype), v)
    return v, relative(bound, v)


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


def _k_exp(V, R, kids, g):
    t, rt = V[kids[:, 0]], R[kids[:, 0]]
    v = np.exp(t)
    r = (rt * np.abs(t) + 2 * U).astype(np.float64)
    r[v == 0] = np.inf
    r[~(r <= 1e300)] = np.inf
    return v, r


def _k_abs(V, R, kids, g):
    t, rt = V[kids[:, 0]], R[kids[:, 0]]
    return np.abs(t), rt.copy()


def _k_sign(V, R, kids, g):
    t, rt = V[kids[:, 0]], R[kids[:, 0]]
    decided = (rt < 1) | ((t == 0) & (rt == 0))
    return np.sign(t), np.where(decided, 0.0, np.inf)


def _k_dirac(V, R, kids, g):
    t, rt = V[kids[:, 0]], R[kids[:, 0]]
    decided = (rt < 1) | ((t == 0) & (rt == 0))
    v = np.where(t != 0, LD(0), LD("nan"))       # 0 away from the kink, undefined at it
    return v, np.where(decided, 0.0, np.inf)


def _k_sech2(V, R, kids, g):
    """c / cosh(t)²: cosh's relative error is ≤ |t|·δt."""
    t, rt = V[kids[:, 0]], R[kids[:, 0]]
    c, rc = ld_of_fraction(g.extra)
    v = c / np.square(np.cosh(t))
    r = (2 * rt * np.abs(t) + 6 * U).astype(np.float64) + rc
    r[v == 0] = np.inf
    r[~(r <= 1e300)] = np.inf
    return v, r


def _k_elementwise(V, R, kids, g):
    """An op of the table with an elementwise kernel: its value, and the argument's absolute
    error times the slope bound plus the kernel's own rounding."""
    t, rt = V[kids[:, 0]], R[kids[:, 0]]
    kernel = _ELEMENTWISE[g.op]
    v = kernel.fn(t)
    return v, relative(kernel.slope(t, v) * (rt * np.abs(t)) + 2 * U * np.abs(v), v)


def _k_gap(V, R, kids, g):
    """An op with no extended-precision kernel (a declared gap of the table): unproven, so
    mpmath computes it."""
    shape = (len(kids), V.shape[1])
    return np.full(shape, LD("nan")), np.full(shape, np.inf)


_ELEMENTWISE = elementwise("ld")


def _k_heaviside(V, R, kids, g):
    t, rt = V[kids[:, 0]], R[kids[:, 0]]
    h0, rh = V[kids[:, 1]], R[kids[:, 1]]
    v = np.where(t > 0, LD(1), np.where(t < 0, LD(0), h0))
    decided = (rt < 1) | ((t == 0) & (rt == 0))
    return v, np.where(decided, np.where(t == 0, rh, 0.0), np.inf)


def _k_extreme(V, R, kids, g):
    T = V[kids]
    v = T.max(axis=1) if g.op == "max" else T.min(axis=1)
    return v, relative((np.abs(T) * R[kids]).max(axis=1), v)   # max and min are 1-Lipschitz


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

_OWN = {"add": _k_add, "mul": _k_mul, "pow": _k_pow, "exp": _k_exp, "abs": _k_abs, "sign": _k_sign,
        "dirac": _k_dirac, "sech2": _k_sech2, "heaviside": _k_heaviside, "max": _k_extreme,
        "min": _k_extreme, "piecewise": _k_piecewise, "and": _k_logic, "or": _k_logic, "not": _k_logic,
        **{op: _k_relation for op in _RELATION}}
_LEAVES = frozenset({"sym", "num", "float", "const", "special", "bool"})  # values of the plan

#: op → extended-precision kernel, derived from the op table
KERNELS = {**{op: _OWN[op] for op in structural("ld") - _LEAVES},
           **{op: _k_elementwise for op in _ELEMENTWISE},
           **{op: _k_gap for op in gaps("ld")}}
