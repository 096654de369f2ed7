"""Reference values: exact expressions evaluated at points, correct to float64.

:class:`Evaluator` is what the checker uses. It evaluates all entries at all points at once
in extended precision with a running bound on every value's error, then in the log domain
where even that range overflows (:mod:`.extended`, :mod:`.logdomain`); it keeps the entries whose
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

The passes, each only over what the one before could not prove (:mod:`.plan` arranges the
graph; the kernels of every op come from the op table, :mod:`diffcheck.symbolic.ops`):
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

import os
from dataclasses import dataclass, replace
from typing import Any, Sequence

import numpy as np
import sympy as sp

from ..compare import FINITE
from ..symbolic.dag import ExprList, Program, from_sympy
from .extended import evaluate as evaluate_extended
from .extended import evaluate_chunk
from .logdomain import evaluate_log
from .mp import MODULES, as_mp, classify
from .oracle import MpmathEvaluator
from .plan import TRUST, U, Plan, plan
from .proof import MpmathGraph, first_precision

__all__ = ["Evaluator", "MpmathEvaluator", "MODULES", "Stats", "as_mp", "classify", "evaluate",
           "exact_values", "magnitude", "program_of"]


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
    to :func:`exact_values` (log domain, then mpmath) only when its upper bound exceeds that
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
        values, ok = evaluate_extended(p, inputs, rel, bounds)
        size = np.abs(values)
        known = size[ok & np.isfinite(values)]
        floor = float(known.max()) if known.size else 0.0
        upper = np.where(np.isfinite(bounds) & np.isfinite(values), size * (1 + bounds), np.inf)
        open_ = ~ok & ~(upper <= floor)
    rows = np.flatnonzero(open_.any(axis=1))
    if len(rows):
        exact, kinds, more = exact_values(program, symbols, inputs[rows], p, need=open_[rows])
        stats.log_domain, stats.exact = more.log_domain, more.exact
        take = open_[rows] & (kinds == FINITE)
        if take.any():
            floor = max(floor, float(np.abs(exact[take]).max()))
    return floor, stats


def exact_values(program: Program, symbols: Sequence[Any], inputs: np.ndarray,
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
    values, ok = evaluate_extended(p, inputs)
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
        evaluate_extended(p, inputs[rows_needed], TRUST, bounds)
        where = {int(r): k for k, r in enumerate(rows_needed)}
        for rows, cols in zip(np.split(bad_rows, splits), np.split(bad_cols, splits)):
            i = int(rows[0])
            exact = graph.entries(inputs[i], [int(c) for c in cols],
                                  first_precision(values[i, cols], bounds[where[i], cols]))
            for c, value in zip(cols, exact):
                values[i, c], kinds[i, c] = classify(value)
    return values, kinds, stats


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
        :func:`magnitude`)."""
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
        out, kinds, stats = exact_values(self.program, self.symbols, np.asarray(values, dtype=np.float64),
                                      self._plan())
        self.stats += stats
        return out, kinds

    def rounding_scale(self, values: np.ndarray) -> np.ndarray:
        """(P, n): the running error bound of evaluating each exact expression op by op, in
        units of the unit roundoff: Σ over the operations of |the value it rounds| times how
        much the expression amplifies it (a sum of terms that cancel counts every term). 0
        where the bound is not finite (nothing is then granted for conditioning).
        See diffcheck.compare for how it enters the tolerance."""
        derived = self.program.derived
        if "plan_as_written" not in derived:
            derived["plan_as_written"] = plan(self.program, rewrite=False)
        values = np.asarray(values, dtype=np.float64)
        bounds = np.empty((values.shape[0], len(self.program.outputs)))
        out, _ = evaluate_extended(derived["plan_as_written"], values, 0.0, bounds)
        with np.errstate(all="ignore"):
            scale = bounds / U * np.abs(out)
        scale[~np.isfinite(scale)] = 0.0
        return scale

    def smallest_underflow(self, values: np.ndarray, tiny: float) -> np.ndarray:
        """(P,): per row, the smallest nonzero |value| of any operation of the formula as
        written that lies below ``tiny`` (a dtype's smallest normal number: the operation
        underflows there), +inf where none does."""
        derived = self.program.derived
        if "plan_as_written" not in derived:
            derived["plan_as_written"] = plan(self.program, rewrite=False)
        if "plan_as_written_values" not in derived:  # the values as written, not the error model's
            derived["plan_as_written_values"] = replace(derived["plan_as_written"], as_written=False)
        p = derived["plan_as_written_values"]
        values = np.asarray(values, dtype=np.float64)
        with np.errstate(all="ignore"):
            V, _ = evaluate_chunk(p, values)
            live = np.concatenate([np.asarray(p.sym_nodes, dtype=int), np.asarray(p.const_nodes, dtype=int)]
                                  + [np.asarray(g.out, dtype=int) for g in p.groups])
            mag = np.abs(V[live].astype(np.float64))
            under = (mag > 0) & (mag < tiny)
            return np.where(under, mag, np.inf).min(axis=0) if len(live) else np.full(len(values), np.inf)

    def _plan(self):
        """The vectorized plan of the program, built once and kept with it."""
        derived = self.program.derived
        if "plan" not in derived:
            derived["plan"] = plan(self.program)
        return derived["plan"]


def evaluate(exprs: Sequence[sp.Expr], symbols: Sequence[sp.Symbol], values: np.ndarray):
    """Convenience: build an :class:`Evaluator` and apply it."""
    return Evaluator(exprs, symbols)(values)
