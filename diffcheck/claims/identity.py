"""``derivative``, ``gradient``, ``jacobian``: an identity claimed for the exact derivative,
decided symbolically, else numerically at seeded random points in high precision."""

from __future__ import annotations

from typing import Any, Mapping

import mpmath
import numpy as np
import sympy as sp

from ..case import Case
from ..errors import ExpressionError
from ..language import parse, to_math
from ..reference.mp import MODULES
from ..results import ERROR, FAIL, PASS, Details, Result
from ..symbolic import CompiledCase, placed
from .context import (TorchAt, claim_env, claim_error, claim_result, claim_rows_of, constant_subs, jacobian_exprs,
                      torch_dtype_name, torch_plain, variable_offsets)
from .numbers import fmt, plain, plain_floats, short

MAX_SIMPLIFY_OPS = 2000      # identities larger than this go straight to the numeric method
NUMERIC_POINTS = 32          # random points of the numeric method
NUMERIC_DPS = 50             # significant digits of the numeric method
NUMERIC_TOL = mpmath.mpf("1e-30")


#: one identity to decide: (label, the claim's text, its key, claimed array, exact array)
Group = tuple[str, str, str, np.ndarray, np.ndarray]


def identity_claim(compiled: CompiledCase, kind: str, spec: Any) -> Result:
    """The result of ``expect.<kind>`` (derivative, gradient or jacobian): every block of the
    claim decided against the exact Jacobian."""
    read = {"derivative": _derivative_group, "gradient": _gradient_groups, "jacobian": _jacobian_groups}[kind]
    return _identity_result(compiled, kind, read(compiled, spec, f"expect.{kind}"))


def _read(compiled: CompiledCase, text: str, where: str) -> np.ndarray:
    """A claimed expression (text, as the loader validated it) in the case's exact symbols."""
    try:
        return to_math(parse(str(text)), claim_env(compiled))
    except ExpressionError as err:
        raise placed(err, compiled.case, where) from None


def _derivative_group(compiled: CompiledCase, spec: Any, key: str) -> list[Group]:
    case = compiled.case
    if len(case.variables) != 1 or case.variables[0].shape or compiled.output.ndim:
        raise claim_error(case, key, "`derivative` needs a scalar function of one scalar variable",
                          "use `gradient` or `jacobian`")
    claimed = _read(compiled, spec, key)
    _shape_or_error(case, key, claimed, ())
    exact = np.array(jacobian_exprs(compiled)[0, 0], dtype=object)
    return [(f"df/d{case.variables[0].name}", str(spec), key, claimed, exact)]


def _gradient_groups(compiled: CompiledCase, spec: Mapping[str, Any], key: str) -> list[Group]:
    """One group per variable the claim names (the loader checked the names)."""
    case = compiled.case
    if compiled.output.ndim:
        raise claim_error(case, key, "`gradient` needs a scalar output", "use `jacobian` for a vector output")
    jac, offsets = jacobian_exprs(compiled), variable_offsets(compiled)
    groups = []
    for name, text in spec.items():
        where = f"{key}.{name}"
        var = case.variable(name)
        lo, hi = offsets[name]
        claimed = _broadcast(case, where, _read(compiled, text, where), var.shape)
        groups.append((f"∂f/∂{name}", str(text), where, claimed, jac[0, lo:hi].reshape(var.shape)))
    return groups


def _jacobian_groups(compiled: CompiledCase, spec: Any, key: str) -> list[Group]:
    """The whole Jacobian of a case of one variable, claimed as one expression of the output's
    shape followed by the variable's, or as (outputs × inputs)."""
    case = compiled.case
    if len(case.variables) != 1:
        raise claim_error(case, key, "a `jacobian` identity needs a case of one variable",
                          "claim the `gradient` per variable, or numbers at points with `values`")
    var = case.variables[0]
    block = jacobian_exprs(compiled)
    claimed = _read(compiled, spec, key)
    full = tuple(compiled.out_shape) + tuple(var.shape)
    if claimed.shape == full:
        exact = block.reshape(full)
    elif claimed.shape == block.shape:
        exact = block
    else:
        raise claim_error(case, key, f"the claimed Jacobian has shape {list(claimed.shape)}; "
                          f"d {list(compiled.out_shape)} / d {var.name}{list(var.shape)} has shape {list(full)}")
    return [(f"∂y/∂{var.name}", str(spec), key, claimed, exact)]


def _identity_result(compiled: CompiledCase, kind: str, groups: list[Group]) -> Result:
    subs = constant_subs(compiled)
    rows, failures, methods, points = [], [], [], 0
    for label, text, where, claimed, exact in groups:
        verdict = decide_identity(claimed, exact, subs, compiled)
        methods.append(verdict["method"])
        row = {"label": label, "claim": text, "claimed": text, "exact": _short_exprs(exact),
               "torch": None, "method": verdict["method"], "holds": verdict["holds"]}
        if verdict.get("counterexample"):
            ce = verdict["counterexample"]
            row["at"] = ce["point"]
            row["claimed"] = ce["claimed"]
            row["exact"] = ce["exact"]
            row["torch"] = _torch_entry(compiled, ce["point"], where, kind, label)
            failures.append(f"{label} = {text} is false: at {fmt(ce['point'])} the claim gives "
                            f"{ce['claimed']}, the exact derivative is {ce['exact']} "
                            f"(they differ by {ce['difference']})"
                            + (f", torch {fmt(row['torch'])}" if row["torch"] is not None else ""))
        elif verdict["holds"] is None:
            failures.append(f"{label} = {text}: {verdict['reason']}")
        rows.append(row)
        points = max(points, verdict["points"])
    undecided = [r for r in rows if r["holds"] is None]
    method = "symbolic" if all(m == "symbolic" for m in methods) else "numeric"
    if failures:
        status = ERROR if undecided and all(r["holds"] is not False for r in rows) else FAIL
        message = "; ".join(failures)
    else:
        how = ("the difference simplifies to zero" if method == "symbolic" else
               f"the difference vanishes at {NUMERIC_POINTS} random points ({NUMERIC_DPS} digits)")
        status, message = PASS, f"{kind} identity holds ({method}: {how})"
    return claim_result(compiled.case, kind, status, message, points, Details(claim=claim_rows_of(rows), method=method))


def _short_exprs(exact: np.ndarray) -> Any:
    return plain(np.frompyfunc(lambda e: short(sp.sympify(e)), 1, 1)(exact)) if exact.ndim else short(exact[()])


def _shape_or_error(case: Case, key: str, claimed: np.ndarray, shape: tuple) -> None:
    if claimed.shape != tuple(shape):
        raise claim_error(case, key, f"the claim has shape {list(claimed.shape)}, the derivative has shape {list(shape)}")


def _broadcast(case: Case, key: str, claimed: np.ndarray, shape: tuple) -> np.ndarray:
    if claimed.shape == tuple(shape):
        return claimed
    if claimed.ndim == 0:
        return np.full(shape, claimed[()], dtype=object)
    raise claim_error(case, key, f"the claim has shape {list(claimed.shape)}, the variable has shape {list(shape)}")


def decide_identity(claimed: np.ndarray, exact: np.ndarray, subs: Mapping, compiled: CompiledCase) -> dict:
    """Whether ``claimed == exact`` entry by entry, with constants substituted: symbolic first,
    then numeric. Returns {holds, method, points, counterexample?, reason?}."""
    diffs = [sp.sympify(c - e).xreplace(subs) for c, e in zip(claimed.ravel(), exact.ravel())]
    undecided = []
    for i, d in enumerate(diffs):
        if not _simplifies_to_zero(d):
            undecided.append(i)
    if not undecided:
        return {"holds": True, "method": "symbolic", "points": 0}
    return _numeric(compiled, [diffs[i] for i in undecided], [sp.sympify(claimed.ravel()[i]).xreplace(subs)
                                                              for i in undecided],
                    [sp.sympify(exact.ravel()[i]).xreplace(subs) for i in undecided])


def _simplifies_to_zero(d: sp.Expr) -> bool:
    """Whether SymPy can show ``d`` is identically zero. ``cancel`` after splitting exponentials
    (exp(a + b) → exp(a)·exp(b)) proves the identities of these notes — σ′ = σ(1 − σ), the
    softmax Jacobian s(δ − s) — in a fifth of ``simplify``'s time; ``simplify`` runs only when
    that fails and ``d`` is not plainly nonzero at a sample point."""
    if d == 0:
        return True
    try:
        if sp.count_ops(d) > MAX_SIMPLIFY_OPS:
            return False
        if sp.cancel(sp.expand(d, power_exp=True)) == 0:
            return True
        if _plainly_nonzero(d):
            return False
        return sp.simplify(d) == 0
    except Exception:  # simplify can fail on Piecewise/Heaviside mixes: let numbers decide
        return False


def _plainly_nonzero(d: sp.Expr) -> bool:
    """``d`` at one point (every symbol in (0, 1), which all real, positive or nonnegative
    symbols allow) is a number far from zero: no simplification can make it vanish."""
    syms = sorted(d.free_symbols, key=str)
    if any(s.is_negative or s.is_nonpositive or s.is_integer for s in syms):
        return False
    point = {s: sp.Rational(3 + 7 * k % 11, 13) for k, s in enumerate(syms)}
    value = d.xreplace(point).evalf(30)
    return bool(value.is_number and value.is_finite and value.is_real and abs(value) > sp.Float("1e-20"))


def _numeric(compiled: CompiledCase, diffs, claimed, exact) -> dict:
    case = compiled.case
    syms = [s for a in compiled.var_symbols.values() for s in a.ravel()]
    fn_d = sp.lambdify(syms, diffs, modules=MODULES)
    fn_c = sp.lambdify(syms, claimed, modules=MODULES)
    fn_e = sp.lambdify(syms, exact, modules=MODULES)
    rng = np.random.default_rng(case.seed)
    checked = 0
    for _ in range(NUMERIC_POINTS):
        point = {v.name: rng.uniform(v.domain[0], v.domain[1], size=v.shape) for v in case.variables}
        row = [x for v in case.variables for x in np.asarray(point[v.name], dtype=np.float64).ravel()]
        with mpmath.workdps(NUMERIC_DPS):
            args = [mpmath.mpf(float(x)) for x in row]
            try:
                ds = fn_d(*args)
                es = fn_e(*args)
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                continue
            values = [(_mp(d), _mp(e)) for d, e in zip(ds, es)]
            if any(d is None or e is None for d, e in values):
                continue  # undefined here (a kink, a pole): not a counterexample
            checked += 1
            for j, (d, e) in enumerate(values):
                if abs(d) > NUMERIC_TOL * (1 + abs(e)):
                    c = _mp(fn_c(*args)[j])
                    shown = {v.name: plain_floats(point[v.name]) for v in case.variables}
                    return {"holds": False, "method": "numeric", "points": checked,
                            "counterexample": {"point": shown,
                                               "claimed": mpmath.nstr(c, 17) if c is not None else "undefined",
                                               "exact": mpmath.nstr(e, 17), "difference": mpmath.nstr(d, 5),
                                               "entry": j}}
    if checked == 0:
        return {"holds": None, "method": "numeric", "points": 0,
                "reason": "undecided: the difference is undefined at every random point"}
    return {"holds": True, "method": "numeric", "points": checked}


def _mp(value):
    if isinstance(value, sp.Basic):
        try:
            value = mpmath.mpmathify(sp.N(value, NUMERIC_DPS))
        except (TypeError, ValueError):
            return None
    if isinstance(value, (int, float)):
        value = mpmath.mpf(value)
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            return None
        value = value.real
    if not isinstance(value, mpmath.mpf) or mpmath.isnan(value) or mpmath.isinf(value):
        return None
    return value


def _torch_entry(compiled: CompiledCase, point: Mapping[str, Any], where: str, kind: str, label: str) -> Any:
    """torch's derivative for an identity's variable block at a counterexample point."""
    t = TorchAt(compiled, point, torch_dtype_name(compiled.case))
    if t.error:
        return t.error
    name = where.rsplit(".", 1)[-1] if where.count(".") >= 2 else compiled.case.variables[0].name
    lo, hi = variable_offsets(compiled)[name]
    block = t.jacobian[:, lo:hi]
    if kind in ("derivative", "gradient"):
        return torch_plain(block[0].reshape(compiled.case.variable(name).shape))
    return torch_plain(block)
