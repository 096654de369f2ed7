"""Exact derivatives of many outputs at once, each shared piece derived once.

``sp.diff(f_i, x_j)`` for every entry re-derives the parts the entries share: for softmax
over n logits each of the n² calls walks the n-term sum again (O(n³) work; 48 s for n = 64).
Here the chain rule runs over the expression graph with a memo on (subexpression, variable)
and a bitmask of the variables each subexpression depends on, so ``d sum / d x_j`` is
derived once and only the terms that contain ``x_j`` are visited (O(n²)).

The rules are the library's own, applied node by node: with SymPy they mirror SymPy's
``_eval_derivative`` methods (the results equal ``sp.diff``'s, term for term), with
SymEngine they mirror SymEngine's ``diff``. SymEngine, when installed (extra ``fast``), is
used for expressions made only of the functions it differentiates exactly like SymPy
(``SYMENGINE_FUNCTIONS``); anything else (Abs, Max, Heaviside, …) goes through SymPy.
Both give the same mathematical derivative; set ``DIFFCHECK_SYMENGINE=0`` to force SymPy.

The results are :class:`~diffcheck.dag.ExprList` objects: a shared graph that the fast
reference evaluates directly and that yields SymPy expressions entry by entry on demand.
"""

from __future__ import annotations

import os
import sys
from functools import reduce
from typing import Any, Callable, Sequence

import sympy as sp
from sympy.core.function import ArgumentIndexError, Function
from sympy.functions.elementary.miscellaneous import MinMaxBase

from .dag import ExprList, from_symengine, from_sympy
from .ops import SYMENGINE_FUNCTIONS  # the op table's ops SymEngine derives like SymPy


try:
    import symengine as _se
except ImportError:  # the optional accelerator is not installed
    _se = None


def symengine_enabled() -> bool:
    """SymEngine is installed and not turned off with DIFFCHECK_SYMENGINE=0."""
    return _se is not None and os.environ.get("DIFFCHECK_SYMENGINE", "1") not in ("0", "false", "no")


def engine_for(exprs: Sequence[sp.Basic]) -> str:
    """"symengine" when it can derive every expression exactly like SymPy, else "sympy"."""
    if not symengine_enabled():
        return "sympy"
    seen: set = set()
    stack = list(exprs)
    while stack:
        e = stack.pop()
        if e in seen or e.is_Atom:
            if e.is_Atom and not (e.is_Symbol or e.is_Number or e in (sp.pi, sp.E)):
                return "sympy"
            continue
        seen.add(e)
        if isinstance(e, sp.Piecewise):
            for expr, cond in e.args:
                stack.append(expr)
                if not _plain_condition(cond):
                    return "sympy"
            continue
        if not (e.is_Add or e.is_Mul or e.is_Pow or type(e) in SYMENGINE_FUNCTIONS):
            return "sympy"
        stack.extend(e.args)
    return "symengine"


def _plain_condition(cond) -> bool:
    if cond in (sp.true, sp.false):
        return True
    if isinstance(cond, (sp.And, sp.Or, sp.Not)):
        return all(_plain_condition(c) for c in cond.args)
    return isinstance(cond, (sp.StrictGreaterThan, sp.GreaterThan, sp.StrictLessThan, sp.LessThan))


# --- the two rule sets ----------------------------------------------------------------------

class _Deriver:
    """Memoized chain rule: ``d(e, j)`` is the derivative of ``e`` by variable ``j``."""

    def __init__(self, variables: Sequence[Any]):
        self.position = {v: i for i, v in enumerate(variables)}
        self.variables = list(variables)
        self._deps: dict[Any, int] = {}
        self._memo: dict[tuple[Any, int], Any] = {}
        self._index: dict[Any, dict[int, list]] = {}

    def deps(self, e) -> int:
        """Bitmask of the variables ``e`` depends on."""
        found = self._deps.get(e)
        if found is not None:
            return found
        stack = [e]
        while stack:
            x = stack[-1]
            if x in self._deps:
                stack.pop()
                continue
            if x in self.position:
                self._deps[x] = 1 << self.position[x]
                stack.pop()
                continue
            pending = [a for a in self._args(x) if a not in self._deps]
            if pending:
                stack.extend(pending)
                continue
            mask = 0
            for a in self._args(x):
                mask |= self._deps[a]
            self._deps[x] = mask
            stack.pop()
        return self._deps[e]

    def d(self, e, j: int):
        if not (self.deps(e) >> j) & 1:
            return self.zero
        key = (e, j)
        found = self._memo.get(key)
        if found is None:
            found = self._memo[key] = self.rule(e, j)
        return found

    def _args(self, e):
        return e.args

    def terms_with(self, e, j: int) -> list:
        """The arguments of ``e`` that depend on variable ``j``: for a sum of n terms, an index
        built once, so that n derivatives of it cost O(n) and not O(n²)."""
        index = self._index.get(e)
        if index is None:
            args = e.args  # (SymEngine builds this tuple anew on every access)
            if len(args) < 16:
                return [a for a in args if (self.deps(a) >> j) & 1]
            index = self._index[e] = {}
            for a in args:
                mask = self.deps(a)
                while mask:
                    low = mask & -mask
                    index.setdefault(low.bit_length() - 1, []).append(a)
                    mask ^= low
        return index.get(j, [])


class _SympyDeriver(_Deriver):
    zero, one = sp.S.Zero, sp.S.One

    def __init__(self, variables):
        super().__init__(variables)
        self._outer: dict[Any, Any] = {}

    def _args(self, e):
        if isinstance(e, sp.Piecewise):
            return [x for pair in e.args for x in pair]
        return e.args

    def rule(self, e, j: int):
        x = self.variables[j]
        if e == x:
            return self.one
        if e.is_Add:
            return sp.Add(*[self.d(a, j) for a in self.terms_with(e, j)])
        if e.is_Mul:  # Mul._eval_derivative
            args = list(e.args)
            terms = []
            for i, a in enumerate(args):
                da = self.d(a, j)
                if da:
                    terms.append(reduce(lambda p, q: p * q, args[:i] + [da] + args[i + 1:], sp.S.One))
            return sp.Add.fromiter(terms)
        if e.is_Pow:  # Pow._eval_derivative
            base, exp = e.args
            return e * (self.d(exp, j) * sp.log(base) + self.d(base, j) * exp / base)
        if isinstance(e, sp.Piecewise):  # Piecewise._eval_derivative
            return sp.Piecewise(*[(self.d(expr, j), cond) for expr, cond in e.args])
        if isinstance(e, sp.Abs) and e.args[0].is_extended_real:  # Abs._eval_derivative
            return self.d(e.args[0], j) * sp.sign(sp.conjugate(e.args[0]))
        if isinstance(e, sp.sign) and e.args[0].is_extended_real:  # sign._eval_derivative
            return 2 * self.d(e.args[0], j) * sp.DiracDelta(e.args[0])
        if isinstance(e, MinMaxBase) or (isinstance(e, Function)
                                         and type(e)._eval_derivative is Function._eval_derivative):
            return self._function(e, j)
        return sp.diff(e, x)  # a class with rules of its own: SymPy itself, unshared

    def _function(self, e, j: int):
        # Function._eval_derivative and MinMaxBase._eval_derivative (same shape)
        terms = []
        for i, a in enumerate(e.args, start=1):
            da = self.d(a, j)
            if da.is_zero:
                continue
            df = self._outer.get((e, i))
            if df is None:  # the outer derivative does not depend on the variable: once per node
                try:
                    df = e.fdiff(i)
                except ArgumentIndexError:
                    df = Function.fdiff(e, i)
                self._outer[(e, i)] = df
            terms.append(df * da)
        return sp.Add(*terms)


class _SymengineDeriver(_Deriver):
    def __init__(self, variables):
        super().__init__(variables)
        self.zero, self.one = _se.Integer(0), _se.Integer(1)
        self._t = _se.Symbol("_diffcheck_t")
        self._fprime: dict[type, Any] = {}
        self._outer: dict[Any, Any] = {}

    def _args(self, e):
        return e.args

    def rule(self, e, j: int):
        se = _se
        if e == self.variables[j]:
            return self.one
        name = type(e).__name__
        if name == "Add":
            return se.Add(*[self.d(a, j) for a in self.terms_with(e, j)])
        if name == "Mul":
            args = e.args
            return se.Add(*[se.Mul(*(args[:i] + (self.d(a, j),) + args[i + 1:]))
                            for i, a in enumerate(args) if (self.deps(a) >> j) & 1])
        if name == "Pow":
            base, exp = e.args
            if base == se.E:
                return se.Mul(e, self.d(exp, j))
            if not self.deps(exp):
                return se.Mul(exp, se.Pow(base, exp - 1), self.d(base, j))
            return se.Mul(e, se.Add(se.Mul(self.d(exp, j), se.log(base)),
                                    se.Mul(exp, self.d(base, j), se.Pow(base, -1))))
        if name == "Piecewise":
            args = e.args
            return se.Piecewise(*[(self.d(args[k], j), args[k + 1]) for k in range(0, len(args), 2)])
        if len(e.args) == 1:  # f(a)' = f'(a)·a', f'(a) built once per node
            outer = self._outer.get(e)
            if outer is None:
                cls = type(e)
                if cls not in self._fprime:
                    self._fprime[cls] = se.diff(e.func(self._t), self._t)
                outer = self._outer[e] = self._fprime[cls].subs({self._t: e.args[0]})
            return se.Mul(outer, self.d(e.args[0], j))
        return se.diff(e, self.variables[j])


class _AutogradFormDeriver(_SympyDeriver):
    """The chain rule as torch's autograd writes two derivatives that read the op's own
    output, where SymPy writes a form that rounds differently:

    * the logistic function σ = 1/(1 + e⁻ᵃ): σ' = σ(1 − σ) (sigmoid, silu, softplus' and
      logsigmoid' all reach it); SymPy writes e⁻ᵃ/(1 + e⁻ᵃ)². Only the first cancels in the
      tails, where σ is within an ulp of 1.
    * a log-sum-exp L = log Σ eᵃⁱ: ∂L/∂aᵢ = exp(aᵢ − L) (logsumexp, logcumsumexp,
      log_softmax, cross_entropy); SymPy writes eᵃⁱ/Σ eᵃʲ. The first inherits the rounding
      of L, an error of u·|L| in the exponent."""

    def __init__(self, variables):
        super().__init__(variables)
        self.saved: dict[Any, Any] = {}   # the op's output as a symbol -> the node it stands for

    def output(self, e):
        """A symbol standing for node ``e`` (torch's saved output), depending on what ``e``
        depends on and derived like it: the derivatives keep the saved value as a factor
        SymPy cannot fold back into another form."""
        for symbol, node in self.saved.items():
            if node == e:
                return symbol
        symbol = sp.Dummy(f"saved{len(self.saved)}")
        self.saved[symbol] = e
        self._deps[symbol] = self.deps(e)
        return symbol

    def rule(self, e, j: int):
        if e in self.saved:
            return self.d(self.saved[e], j)
        b = _logistic_exponent(e)
        if b is not None:  # e = 1/(1 + exp(b)): de/db = -exp(b)/(1 + exp(b))² = -e·(1 - e)
            s = self.output(e)
            return -s * (1 - s) * self.d(b, j)
        if _is_log_sum_exp(e):  # d log Σ exp(aᵢ) = Σ exp(aᵢ - L)·daᵢ
            s = self.output(e)
            return sp.Add(*[sp.exp(t.args[0] - s) * self.d(t.args[0], j) for t in self.terms_with(e.args[0], j)])
        return super().rule(e, j)


def _logistic_exponent(e):
    """b when ``e`` is 1/(1 + exp(b)), else None."""
    if not (e.is_Pow and e.args[1] == -1 and e.args[0].is_Add and len(e.args[0].args) == 2):
        return None
    one, other = sorted(e.args[0].args, key=lambda a: not a.is_Number)
    if one == 1 and isinstance(other, sp.exp):
        return other.args[0]
    return None


def _is_log_sum_exp(e) -> bool:
    """``e`` is log(exp(a₁) + … + exp(aₙ)), n ≥ 2."""
    return (isinstance(e, sp.log) and e.args[0].is_Add and len(e.args[0].args) >= 2
            and all(isinstance(t, sp.exp) for t in e.args[0].args))


def _saved_output(e) -> bool:
    """``e`` is an output torch's backward reads (see :class:`_AutogradFormDeriver`)."""
    return _logistic_exponent(e) is not None or _is_log_sum_exp(e)


# --- the public face ----------------------------------------------------------------------

def _deriver(outputs: Sequence[sp.Basic], wrt: Sequence[sp.Symbol]):
    """(deriver, outputs in its form, a function from its results to an ExprList)."""
    if engine_for(outputs) == "symengine":
        deriver = _SymengineDeriver([_se.sympify(x) for x in wrt])
        native = [_se.sympify(o) for o in outputs]
        return deriver, native, lambda exprs, symbols: ExprList(from_symengine(exprs, symbols), symbols)
    deriver = _SympyDeriver(list(wrt))
    return deriver, list(outputs), lambda exprs, symbols: ExprList(from_sympy(exprs, symbols), symbols, exprs)


def _deep(fn: Callable):
    """Derivation recurses once per level of the expression: allow deep expressions."""
    def run(*args):
        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 20_000))
        try:
            return fn(*args)
        finally:
            sys.setrecursionlimit(limit)
    return run


MAX_SENSITIVITY_TERMS = 4096  # entries × saved outputs past which the sensitivity is not built


@_deep
def saved_output_sensitivity(kind: str, outputs: Sequence[sp.Basic], wrt: Sequence[sp.Symbol],
                             symbols: Sequence[sp.Symbol], order: int = 1) -> ExprList | None:
    """How much torch's derivatives move when the outputs its backward reads are rounded.

    The derivatives of a check (``kind``: jacobian, hessian or derivative of ``order``) are
    written as torch's autograd computes them (:class:`_AutogradFormDeriver`: σ' = σ(1 − σ),
    ∂ log Σ eᵃ / ∂aᵢ = exp(aᵢ − L)), each such saved output vₖ made a symbol, and for every
    entry R the sum Σₖ |vₖ·∂R/∂vₖ| is returned: the error of R, in units of the unit
    roundoff, when each vₖ carries one rounding. None when the outputs hold no such node (or too many entries to afford it).
    Only the tolerance's rounding scale reads it (diffcheck.compare)."""
    nodes = sorted({n for o in outputs for n in sp.preorder_traversal(o) if _saved_output(n)},
                   key=sp.default_sort_key)
    if not nodes:
        return None
    n_entries = {"hessian": len(wrt) ** 2, "derivative": 1}.get(kind, len(outputs) * len(wrt))
    if n_entries * len(nodes) > MAX_SENSITIVITY_TERMS:
        return None
    deriver = _AutogradFormDeriver(list(wrt))
    exprs = _derived(deriver, kind, outputs, len(wrt), order)
    back = deriver.saved
    out = []
    for r in exprs:
        out.append(sp.Add(*[sp.Abs((s * sp.diff(r, s)).xreplace(back)) for s in back if r.has(s)]))
    return ExprList(from_sympy(out, symbols), symbols, out)


@_deep
def jacobian(outputs: Sequence[sp.Basic], wrt: Sequence[sp.Symbol], symbols: Sequence[sp.Symbol]) -> ExprList:
    """d outputs[i] / d wrt[k], row-major; ``symbols`` are the columns of the Program."""
    deriver, native, finish = _deriver(outputs, wrt)
    return finish(_derived(deriver, "jacobian", native, len(wrt)), symbols)


@_deep
def hessian(output: sp.Basic, wrt: Sequence[sp.Symbol], symbols: Sequence[sp.Symbol]) -> ExprList:
    """d² output / d wrt[i] d wrt[k], row-major."""
    deriver, native, finish = _deriver([output], wrt)
    return finish(_derived(deriver, "hessian", native, len(wrt)), symbols)


@_deep
def nth_derivative(output: sp.Basic, x: sp.Symbol, order: int, symbols: Sequence[sp.Symbol]) -> ExprList:
    """dⁿ output / d xⁿ."""
    deriver, native, finish = _deriver([output], [x])
    return finish(_derived(deriver, "derivative", native, 1, order), symbols)


def _derived(deriver, kind: str, outputs: Sequence[Any], n_wrt: int, order: int = 1) -> list:
    """The entries of a check, row-major, by ``deriver``: a Jacobian (d outputs[i] / d wrt[k]),
    a Hessian of outputs[0], or its ``order``-th derivative by the one variable."""
    if kind == "hessian":
        grad = [deriver.d(outputs[0], i) for i in range(n_wrt)]
        return [deriver.d(g, k) for g in grad for k in range(n_wrt)]
    if kind == "derivative":
        f = outputs[0]
        for _ in range(order):
            f = deriver.d(f, 0)
        return [f]
    return [deriver.d(f, k) for f in outputs for k in range(n_wrt)]
