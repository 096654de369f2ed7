"""``descent``: gradient-descent steps from ``start``, in exact arithmetic and with torch
autograd side by side; each claimed step is a number claim."""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter
import torch

from ..autograd import classify_error
from ..case import Case
from ..points import torch_dtype
from ..results import FAIL, PASS, UNSET, DescentStep, Details, Result
from ..symbolic import CompiledCase
from .context import (as_numpy, claim_error, claim_result, claim_rows_of, claimed_numbers, constant_subs,
                      jacobian_exprs, read_point, torch_dtype_name, torch_plain, variable_offsets)
from .numbers import (EXACT_DIGITS, as_written, exact_array, exact_number, floats, fmt, fmt_num,
                      places_text, plain, rational, rounding_note, texts)

MAX_RATIONAL_BITS = 4000     # a descent iterate beyond this continues in EXACT_DIGITS-digit floats


def descent_claim(compiled: CompiledCase, spec: Mapping[str, Any], key: str) -> Result:
    """The result of one descent claim ({start, lr, steps}, as the loader checked it): the
    exact and torch trajectories side by side, each claimed number decided on the exact one."""
    case = compiled.case
    if compiled.output.ndim:
        raise claim_error(case, key, "gradient descent needs a scalar output (a loss)")
    start_spec = dict(spec["start"])
    start_loss = start_spec.pop("loss", None)
    start = read_point(compiled, start_spec)
    claims = _step_claims(compiled, spec["steps"], f"{key}.steps")
    last = max(k for k, _ in claims)
    lr_text = fmt_num(spec["lr"])
    dtype = torch_dtype_name(case)
    exact_path, arithmetic = _exact_descent(compiled, start, rational(spec["lr"]), last, {k for k, _ in claims} | {0})
    torch_path, torch_error = _torch_descent(compiled, start, float(exact_number(spec["lr"])), last, dtype)
    wanted = dict(claims)
    if start_loss is not None:
        wanted[0] = {"loss": claimed_numbers(case, f"{key}.start", start_loss, (), "the loss at the start")}
    table = _Table(case, lr_text, dtype, torch_error)
    for k in sorted(set(wanted) | {0}):
        table.add(k, wanted.get(k, {}), exact_path[k], torch_path[k] if k < len(torch_path) else None)
    details = Details(trajectory=tuple(DescentStep(**row) for row in table.rows), claim=claim_rows_of(table.claim_rows),
                      lr=spec["lr"], arithmetic=arithmetic, start={n: plain(a) for n, a in start.items()},
                      torch_dtype=dtype, torch_error=torch_error if torch_error else UNSET)
    head = f"descent from {fmt({n: plain(a) for n, a in start.items()})} with lr {lr_text}"
    if table.failures:
        status, message = FAIL, f"{head}: " + "; ".join(table.failures)
    else:
        status, message = PASS, f"{head}: all {len(claims)} claimed step(s) hold"
    return claim_result(case, "descent", status, message, table.count, details)


class _Table:
    """The trajectory table of a descent claim, one row per claimed step (and the start),
    and a claim row per claimed number."""

    def __init__(self, case: Case, lr_text: str, dtype: str, torch_error: str | None):
        self.case, self.lr_text, self.dtype, self.torch_error = case, lr_text, dtype, torch_error
        self.rows: list[dict] = []
        self.claim_rows: list[dict] = []
        self.failures: list[str] = []
        self.count = 0

    def add(self, k: int, claimed: Mapping[str, np.ndarray], exact_state: Mapping[str, np.ndarray],
            tstate: Mapping[str, np.ndarray] | None) -> None:
        row_exact, row_torch, row_holds = {}, {}, True if claimed else None
        shown_names = [v.name for v in self.case.variables] + (["loss"] if "loss" in claimed or k == 0 else [])
        for name in shown_names:
            ex = exact_state[name]
            row_exact[name] = texts(ex)
            row_torch[name] = (torch_plain(tstate[name]) if tstate is not None and name in tstate
                               else (self.torch_error or "—"))
            if name in claimed:
                holds = self._claim(k, name, claimed[name], ex, row_torch[name])
                row_holds = row_holds and holds
        self.rows.append({"step": k, "claimed": {n: as_written(v) for n, v in claimed.items()} or None,
                          "exact": row_exact, "torch": row_torch, "holds": row_holds})

    def _claim(self, k: int, label: str, c: np.ndarray, ex: np.ndarray, torch_value: Any) -> bool:
        holds = bool(np.all(np.frompyfunc(lambda e, v: e.holds(v), 2, 1)(ex, c)))
        self.count += c.size
        self.claim_rows.append({"label": f"step {k} (lr {self.lr_text}): {label}" if k else f"start: {label}",
                                "claim": f"{label} = {fmt(c)} after {k} step{'s' if k != 1 else ''}",
                                "claimed": as_written(c), "exact": texts(ex), "exact_float": floats(ex),
                                "torch": torch_value, "method": places_text(c), "holds": holds})
        if not holds:
            self.failures.append(f"claims {label} = {fmt(c)} after step {k}; exact {fmt(texts(ex))}"
                                 f"{rounding_note(ex, c)}, torch ({self.dtype}) {fmt(torch_value)}")
        return holds


def _step_claims(compiled: CompiledCase, steps: list, key: str) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Each claimed step as (iteration number, {variable or 'loss': numbers}); an entry may
    say ``after: n`` to claim the iterate after n steps (otherwise it is the next step). The
    loader checked the names, the order of ``after`` and the number of steps."""
    case = compiled.case
    shapes = {v.name: v.shape for v in case.variables}
    out, k = [], 0
    for i, step in enumerate(steps):
        step = dict(step)
        after = step.pop("after", None)
        k = after if after is not None else k + 1
        out.append((k, {name: claimed_numbers(case, f"{key}.{i}", value, shapes.get(name, ()), f"{name} of step {k}")
                        for name, value in step.items()}))
    return out


def _exact_descent(compiled: CompiledCase, start: Mapping[str, np.ndarray], lr: sp.Rational,
                   steps: int, keep: set[int]) -> tuple[dict[int, dict[str, np.ndarray]], str]:
    """The iterates in ``keep`` (of 0..steps), each with its loss, as arrays of :class:`Exact`;
    and how they were computed. Rationals stay rational; an iterate that is not rational, or
    whose rationals outgrow MAX_RATIONAL_BITS, continues with EXACT_DIGITS significant digits."""
    case = compiled.case
    jac = [sp.sympify(g) for g in jacobian_exprs(compiled)[0]]
    offsets = variable_offsets(compiled)
    consts = constant_subs(compiled)
    loss_expr = sp.sympify(compiled.output[()])
    # constants first, once: the iteration then only substitutes the variables
    jac = [g.xreplace(consts) for g in jac]
    loss_expr = loss_expr.xreplace(consts)
    syms = [s for v in case.variables for s in compiled.var_symbols[v.name].ravel()]
    state = [rational(x) for v in case.variables for x in start[v.name].ravel()]

    def record(values: Sequence[sp.Expr], loss: sp.Expr) -> dict[str, np.ndarray]:
        entry = {}
        for v in case.variables:
            lo, hi = offsets[v.name]
            entry[v.name] = exact_array(np.array(list(values[lo:hi]), dtype=object).reshape(v.shape))
        entry["loss"] = exact_array(np.array(loss, dtype=object))
        return entry

    fast = _arithmetic_descent(jac, loss_expr, syms, state, lr, steps, keep, record)
    if fast is not None:
        return fast
    path: dict[int, dict[str, np.ndarray]] = {}
    switched: int | None = None
    for k in range(steps + 1):
        subs = dict(zip(syms, state))
        if k in keep:
            path[k] = record(state, _tidy(loss_expr.xreplace(subs)))
        if k == steps:
            break
        grad = [_tidy(g.xreplace(subs)) for g in jac]
        state = [_tidy(x - lr * d) for x, d in zip(state, grad)]
        if switched is None and any(not x.is_Rational for x in state):
            switched = k + 1
    return path, _arithmetic_text(switched)


def _arithmetic_text(switched: int | None) -> str:
    return ("exact rational arithmetic" if switched is None else
            f"exact rational arithmetic, then {EXACT_DIGITS} significant digits from step {switched}")


class _FractionPrinter(PythonCodePrinter):
    """Python code in which every rational constant is a ``Fraction``: exact arithmetic."""

    def _print_Rational(self, expr):
        return f"Fraction({expr.p}, {expr.q})"

    def _print_Integer(self, expr):
        return str(expr.p)


def _is_arithmetic(expr: sp.Expr, syms: Sequence[sp.Symbol]) -> bool:
    """Only +, −, ×, ÷ and whole powers of the variables and rational numbers."""
    allowed = set(syms)
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Add, sp.Mul, sp.Rational)) or node in allowed:
            continue
        if isinstance(node, sp.Pow) and node.exp.is_Integer:
            continue
        return False
    return True


def _collected(expr: sp.Expr, syms) -> sp.Expr:
    """A polynomial with its data summed into a few coefficients (the gradient of a mean
    squared error over ten points is a·w + b·c + d), when that is no bigger: exact rational
    arithmetic then reduces fractions a few times per step, not once per data point."""
    if len(syms) > 8 or not expr.is_polynomial(*syms):
        return expr
    expanded = sp.expand(expr)
    return expanded if sp.count_ops(expanded) <= sp.count_ops(expr) else expr


def _arithmetic_descent(jac, loss_expr, syms, state, lr, steps: int, keep: set[int], record):
    """The same iteration as :func:`_exact_descent`, compiled, for a loss whose gradient is
    rational arithmetic (every polynomial or rational loss, the notes' linear regressions):
    Python ``Fraction`` s while they fit in MAX_RATIONAL_BITS, then mpmath at EXACT_DIGITS
    digits. 500 steps take milliseconds instead of a third of a second. None when the loss
    is not of that kind, or the arithmetic divides by zero (the general path then decides)."""
    exprs = list(jac) + [loss_expr]
    if not syms or not all(_is_arithmetic(e, syms) for e in exprs):
        return None
    exprs = [_collected(e, syms) for e in exprs]
    exact = sp.lambdify(syms, exprs, modules=[{"Fraction": Fraction}], printer=_FractionPrinter, cse=True)
    # the rounded phase takes the rational constants as arguments, converted once
    ratios = sorted({r for e in exprs for r in e.atoms(sp.Rational) if not r.is_Integer}, key=str)
    holders = sp.symbols(f"_c0:{len(ratios)}") if ratios else ()
    swap = dict(zip(ratios, holders))
    rounded = sp.lambdify(list(syms) + list(holders), [e.xreplace(swap) for e in exprs], modules="mpmath", cse=True)
    x = [Fraction(int(v.p), int(v.q)) for v in state]
    rate = Fraction(int(lr.p), int(lr.q))
    path: dict[int, dict[str, np.ndarray]] = {}
    switched: int | None = None
    try:
        for k in range(steps + 1):
            if switched is None:
                *grad, loss = exact(*x)
                if k in keep:
                    path[k] = record([sp.Rational(v.numerator, v.denominator) for v in x],
                                     _tidy(sp.Rational(Fraction(loss).numerator, Fraction(loss).denominator)))
                if k == steps:
                    break
                x = [v - rate * g for v, g in zip(x, grad)]
                if any(max(abs(v.numerator).bit_length(), v.denominator.bit_length()) > MAX_RATIONAL_BITS
                       for v in x):
                    switched = k + 1
                    with mpmath.workdps(EXACT_DIGITS):
                        x = [mpmath.mpf(v.numerator) / v.denominator for v in x]
                        constants = [mpmath.mpf(int(r.p)) / int(r.q) for r in ratios]
                        step = mpmath.mpf(rate.numerator) / rate.denominator
                continue
            with mpmath.workdps(EXACT_DIGITS):
                *grad, loss = rounded(*x, *constants)
                if k in keep:
                    path[k] = record([sp.Float(v, EXACT_DIGITS) for v in x], sp.Float(loss, EXACT_DIGITS))
                if k == steps:
                    break
                x = [v - step * g for v, g in zip(x, grad)]
    except ZeroDivisionError:
        return None
    return path, _arithmetic_text(switched)


def _tidy(x: sp.Expr) -> sp.Expr:
    """Keep rationals exact while they are of a reasonable size; evaluate anything else to
    EXACT_DIGITS digits so that the expressions of later iterates stay small."""
    x = sp.sympify(x)
    if x.is_Rational and max(abs(int(x.p)).bit_length(), int(x.q).bit_length()) <= MAX_RATIONAL_BITS:
        return x
    return sp.Float(sp.N(x, EXACT_DIGITS), EXACT_DIGITS)


def _torch_descent(compiled: CompiledCase, start: Mapping[str, np.ndarray], lr: float, steps: int,
                   dtype: str) -> tuple[list[dict[str, np.ndarray]], str | None]:
    """Iterates with ``torch.autograd.grad``; stops at the first error (returned as text)."""
    case = compiled.case
    td = torch_dtype(dtype)
    consts = {n: torch.as_tensor(v, dtype=td) for n, v in compiled.const_values.items()}
    xs = [torch.tensor(np.asarray(plain(start[v.name]), dtype=np.float64), dtype=td) for v in case.variables]
    path = []
    try:
        for k in range(steps + 1):
            leaves = [x.detach().clone().requires_grad_(True) for x in xs]
            loss = compiled.forward(leaves, consts, td)
            entry = {v.name: as_numpy(x) for v, x in zip(case.variables, leaves)}
            entry["loss"] = as_numpy(loss)
            path.append(entry)
            if k == steps:
                break
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
            with torch.no_grad():
                xs = [x - lr * (g if g is not None else torch.zeros_like(x)) for x, g in zip(leaves, grads)]
    except Exception as err:
        return path, f"torch raised: {classify_error(err)}"
    return path, None
