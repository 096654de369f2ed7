"""The plan: a Program arranged for vectorized evaluation, level by level.

Nodes of one kind and level become one :class:`Group` (one numpy operation for all of them);
constant factors of products are multiplied once; a few cancellations are rewritten before
they happen (log(1 + t) → log1p(t), eᵗ − 1 → expm1(t), c − c·tanh² → c·sech²); and every
constant leaf gets its extended-precision value with a bound on its relative error.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Sequence

import mpmath
import numpy as np

from ..symbolic.dag import Program

LD = np.longdouble
U = float(np.finfo(LD).eps) / 2          # unit roundoff of the extended precision
TRUST = 2.0 ** -54                        # a relative bound that proves ≤ 1 float64 ulp
F64_MAX = float(np.finfo(np.float64).max)


@dataclass
class Group:
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
    groups: list[Group]
    outputs: np.ndarray
    nodes: tuple[list, list, list]  # the rewritten (ops, args, data) the groups index
    # the formula as written, evaluated as autograd does (rewrite=False): its error bounds model
    # the dtype's evaluation, so a sum of n terms counts the roundings of any summation order
    # (diffcheck.reference.extended._k_add), not only this evaluator's pairwise one
    as_written: bool = False


# Long on purpose (about 70 lines): the levelling, grouping and liveness passes share the arrays
# they build, in one loop over the program.
def plan(program: Program, rewrite: bool = True) -> Plan:
    """The program arranged for vectorized evaluation; ``rewrite=False`` keeps every node as
    written (no log1p/expm1/sech² forms): its error bounds are then those of evaluating the
    formula op by op, as autograd does (the conditioning scale of diffcheck.compare)."""
    ops, args, data = _rewrite(program) if rewrite else (list(program.ops), list(program.args), list(program.data))
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
        group = Group(op, np.array(nodes, dtype=np.intp), kids, extra)
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
                renumber[np.array(program.outputs, dtype=np.intp)], (ops, args, data), as_written=not rewrite)


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
        return ld_of_fraction(data)
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
def ld_of_fraction(q: Fraction) -> tuple[Any, float]:
    p, d = q.numerator, q.denominator
    if d & (d - 1) == 0 and abs(p).bit_length() <= 63 and d.bit_length() < 16000:
        return LD(p) / LD(d), 0.0  # a dyadic rational with a short numerator: exact
    with mpmath.workdps(40):
        return LD(mpmath.nstr(mpmath.mpf(p) / d, 30)), U
