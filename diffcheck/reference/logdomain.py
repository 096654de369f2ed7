"""The log-domain pass: beyond the extended range.

sigmoid(−65504) is 1/(1 + e⁶⁵⁵⁰⁴): e⁶⁵⁵⁰⁴ overflows even the extended range (e¹¹³⁵⁶), so the
linear pass proves nothing there. Points where it proved nothing are evaluated again with
every value held as (sign, ln|x|) and a bound on the absolute error of ln|x|: e⁶⁵⁵⁰⁴ is just
ln = 65504, and the result ln ≈ −65504 proves that float64 rounds the exact value to zero.
Operations with a rule here (sums, products, powers, exp, log, log1p, expm1, sech², tanh,
abs) work in that form; any other reads its arguments back in linear form, if they fit.
"""

from __future__ import annotations

import math

import numpy as np

from ..symbolic.ops import OPS_TABLE
from .extended import CHUNK_CELLS, KERNELS, relative
from .plan import F64_MAX, LD, TRUST, U, Plan, ld_of_fraction

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
    out_S, out_L, out_E = _to_log(y, relative(ay, y))
    return out_S, out_L, out_E


def _l_expm1(S, L, E, kids, g):
    t, rt = _linear_arg(S, L, E, kids)
    big = t > 45                                 # e^t − 1 = e^t (1 − e^−t)
    y = np.expm1(np.where(big, 0, t))
    r_lin = relative((np.abs(y) + 1) * rt * np.abs(t) + 2 * U * np.abs(y), y)
    out_S, out_L, out_E = _to_log(y, r_lin)
    out_S[big], out_L[big] = 1, t[big]
    out_E[big] = (rt[big] * np.abs(t[big]) + U * np.abs(t[big]) + 2 * np.exp(-t[big])).astype(np.float64)
    out_E[~(out_E <= 1e300)] = np.inf
    return out_S, out_L, out_E


def _l_sech2(S, L, E, kids, g):
    c, rc = ld_of_fraction(g.extra)
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
    out = _to_log(v, relative(rt * np.abs(t) + 2 * U * np.abs(v), v))
    huge = (S[kids[:, 0]] != 0) & (L[kids[:, 0]] >= LN_LD_MAX) & (E[kids[:, 0]] < 1)
    out[0][huge], out[1][huge], out[2][huge] = S[kids[:, 0]][huge], 0, U
    return out


def _l_abs(S, L, E, kids, g):
    return np.abs(S[kids[:, 0]]), L[kids[:, 0]].copy(), E[kids[:, 0]].copy()


_RULES = {"add": _l_add, "mul": _l_mul, "pow": _l_pow, "exp": _l_exp, "log": _l_log,
          "log1p": _l_log, "expm1": _l_expm1, "sech2": _l_sech2, "tanh": _l_tanh, "abs": _l_abs}
#: op → log-domain rule: the ops the table marks ``log`` (every other op reads linear form)
LOG_KERNELS = {op.name: _RULES[op.name] for op in OPS_TABLE if op.log}


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
        kernel = LOG_KERNELS.get(g.op)
        if kernel is not None:
            S[g.out], L[g.out], E[g.out] = kernel(S, L, E, g.kids, g)
            V[g.out], R[g.out] = _from_log(S[g.out], L[g.out], E[g.out])
        else:
            V[g.out], R[g.out] = KERNELS[g.op](V, R, g.kids, g)
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
