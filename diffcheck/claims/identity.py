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
from .numbers import fmt, is_number, plain, plain_floats, short

MAX_SIMPLIFY_OPS = 2000      # identities larger than this go straight to the numeric method
NUMERIC_POINTS = 32          # random points of the numeric method
NUMERIC_DPS = 50             # significant digits of the numeric method
NUMERIC_TOL = mpmath.mpf("1e-30")


# Long on purpose (about 100 lines): one identity claim is one decision over shared state (the claimed
# array, the exact Jacobian, its offsets): read, check shapes, simplify, then the high-precision
# numeric fallback. Its structure checks moved to the loader; splitting the rest is left to the claims split.
def identity_claim(compiled: CompiledCase, kind: str, spec: Any) -> Result:
    case = compiled.case
    key = f"expect.{kind}"
    points = 0
    jac = jacobian_exprs(compiled)
    offsets = variable_offsets(compiled)
    out_shape = compiled.out_shape
    groups: list[tuple[str, str, str, np.ndarray, np.ndarray]] = []  # (label, text, key, claimed, exact)

    def read(text: Any, where: str) -> np.ndarray:
        if not isinstance(text, str) and not is_number(text):
            raise claim_error(case, where, "an identity claim is an expression of the case language (text)")
        try:
            return to_math(parse(str(text)), claim_env(compiled))
        except ExpressionError as err:
            raise placed(err, case, where) from None

    if kind == "derivative":
        if len(case.variables) != 1 or case.variables[0].shape or compiled.output.ndim:
            raise claim_error(case, key, "`derivative` needs a scalar function of one scalar variable",
                         "use `gradient` or `jacobian`")
        claimed = read(spec, key)
        _shape_or_error(case, key, claimed, ())
        v = case.variables[0].name
        groups.append((f"df/d{v}", str(spec), key, claimed, np.array(jac[0, 0], dtype=object)))
    elif kind == "gradient":
        if compiled.output.ndim:
            raise claim_error(case, key, "`gradient` needs a scalar output", "use `jacobian` for a vector output")
        if isinstance(spec, (str, int, float)) and len(case.variables) == 1:
            spec = {case.variables[0].name: spec}
        if not isinstance(spec, Mapping) or not spec:
            raise claim_error(case, key, "`gradient` maps variables to expressions: {w: ...}")
        for name, text in spec.items():
            where = f"{key}.{name}"
            if name not in offsets:
                raise claim_error(case, where, f"{name!r} is not a variable of the case "
                             f"(variables: {[v.name for v in case.variables]})")
            var = case.variable(name)
            lo, hi = offsets[name]
            exact = jac[0, lo:hi].reshape(var.shape)
            claimed = _broadcast(case, where, read(text, where), var.shape)
            groups.append((f"∂f/∂{name}", str(text), where, claimed, exact))
    else:  # jacobian
        if isinstance(spec, Mapping):
            items = list(spec.items())
        elif len(case.variables) == 1:
            items = [(case.variables[0].name, spec)]
        else:
            raise claim_error(case, key, "with several variables, `jacobian` maps each variable to its block")
        for name, text in items:
            where = f"{key}.{name}" if isinstance(spec, Mapping) else key
            if name not in offsets:
                raise claim_error(case, where, f"{name!r} is not a variable of the case")
            var = case.variable(name)
            lo, hi = offsets[name]
            block = jac[:, lo:hi]
            claimed = read(text, where)
            full = tuple(out_shape) + tuple(var.shape)
            if claimed.shape == full:
                exact = block.reshape(full)
            elif claimed.shape == block.shape:
                exact = block
            else:
                raise claim_error(case, where, f"the claimed Jacobian has shape {list(claimed.shape)}; "
                             f"d {list(out_shape)} / d {name}{list(var.shape)} has shape {list(full)}")
            groups.append((f"∂y/∂{name}", str(text), where, claimed, exact))

    subs = constant_subs(compiled)
    rows, failures, methods = [], [], []
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
    return claim_result(case, kind, status, message, points, Details(claim=claim_rows_of(rows), method=method))


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
