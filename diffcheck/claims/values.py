"""``values``: numbers claimed at a point (the value, the derivative, gradient, Jacobian and
d output / d let step), each against the exact value rounded to the places written."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import sympy as sp

from ..results import FAIL, PASS, Details, Result
from ..symbolic import CompiledCase
from .context import (TorchAt, claim_error, claim_result, claim_rows_of, claimed_numbers, intermediate_exprs,
                      jacobian_exprs, point_subs, read_point, torch_dtype_name, torch_plain, variable_offsets)
from .numbers import as_written, decimals, exact_array, floats, fmt, number_array, places_text, plain, rounding_note, texts

VALUE_KINDS = ("value", "derivative", "gradient", "jacobian", "intermediates")


def values_claim(compiled: CompiledCase, entry: Any, key: str) -> Result:
    case = compiled.case
    if not isinstance(entry, Mapping) or "at" not in entry:
        raise claim_error(case, key, "each `values` entry is {at: {variable: value}, <kind>: <number(s)>}",
                     f"kinds: {', '.join(VALUE_KINDS)}")
    unknown = [k for k in entry if k != "at" and k not in VALUE_KINDS]
    if unknown:
        raise claim_error(case, key, f"unknown value claim {unknown[0]!r}; value claims are {', '.join(VALUE_KINDS)}")
    kinds = [k for k in VALUE_KINDS if k in entry]
    if not kinds:
        raise claim_error(case, key, "the entry claims nothing", f"add one of {', '.join(VALUE_KINDS)}")
    point = read_point(compiled, entry["at"], f"{key}.at")
    subs = point_subs(compiled, point)
    steps = list(entry["intermediates"]) if isinstance(entry.get("intermediates"), Mapping) else []
    dtype = torch_dtype_name(case)
    tpoint = {n: np.asarray(plain(a), dtype=np.float64) for n, a in point.items()}
    t = TorchAt(compiled, tpoint, dtype, steps)
    shown_at = {n: plain(a) for n, a in point.items()}
    rows, failures, count = [], [], 0
    for kind in kinds:
        for label, claimed, exact_exprs, torch_value in _value_claims(compiled, kind, entry[kind], f"{key}.{kind}", t):
            exact = exact_array(np.frompyfunc(lambda e: sp.sympify(e).xreplace(subs), 1, 1)(exact_exprs)
                                 if exact_exprs.ndim else np.array(sp.sympify(exact_exprs[()]).xreplace(subs),
                                                                    dtype=object))
            verdicts = np.frompyfunc(lambda e, c: e.holds(c), 2, 1)(exact, claimed)
            holds = bool(np.all(verdicts))
            count += claimed.size
            places = sorted({decimals(c) for c in claimed.ravel()})
            method = (f"rounded to {places[0]} decimal{'s' if places[0] != 1 else ''}" if len(places) == 1
                      else "rounded to the decimals written")
            row = {"label": label, "claim": f"{label} = {fmt(claimed)}", "at": shown_at,
                   "claimed": as_written(claimed), "exact": texts(exact), "exact_float": floats(exact),
                   "torch": torch_value, "method": method, "holds": holds}
            rows.append(row)
            if not holds:
                failures.append(f"claims {label} = {fmt(claimed)} at {fmt(shown_at)}; "
                                f"exact {fmt(row['exact'])}{rounding_note(exact, claimed)}, "
                                f"torch ({dtype}) {fmt(row['torch'])}")
    if failures:
        status, message = FAIL, "; ".join(failures)
    else:
        status = PASS
        message = f"{count} claimed number{'s' if count != 1 else ''} at {fmt(shown_at)} hold " \
                  f"(exact value rounded to the decimals written)"
    return claim_result(case, "values", status, message, count, Details(claim=claim_rows_of(rows), torch_dtype=dtype))


# Long on purpose (about 75 lines): one short branch per kind of value claim (value, derivative,
# gradient, jacobian, intermediates), each yielding the same tuple.
def _value_claims(compiled: CompiledCase, kind: str, spec: Any, key: str, t: TorchAt):
    """(label, claimed numbers, exact expressions, torch's values) for one kind of a values entry."""
    case = compiled.case
    out_shape = compiled.out_shape
    if kind == "value":
        claimed = claimed_numbers(case, key, spec, out_shape, "the value")
        yield "f", claimed, compiled.output, t.value_error or torch_plain(t.value)
        return
    jac = jacobian_exprs(compiled)
    offsets = variable_offsets(compiled)
    if kind == "derivative":
        if len(case.variables) != 1 or case.variables[0].shape or compiled.output.ndim:
            raise claim_error(case, key, "`derivative` needs a scalar function of one scalar variable",
                         "use `gradient` or `jacobian`")
        claimed = claimed_numbers(case, key, spec, (), "the derivative")
        yield (f"df/d{case.variables[0].name}", claimed, np.array(jac[0, 0], dtype=object),
               t.error or torch_plain(t.jacobian[0, 0]))
        return
    if kind == "gradient":
        if compiled.output.ndim:
            raise claim_error(case, key, "`gradient` needs a scalar output", "use `jacobian` for a vector output")
        if not isinstance(spec, Mapping) or not spec:
            if len(case.variables) == 1:
                spec = {case.variables[0].name: spec}
            else:
                raise claim_error(case, key, "`gradient` maps variables to numbers: {w: 24}")
        for name, value in spec.items():
            if name not in offsets:
                raise claim_error(case, f"{key}.{name}", f"{name!r} is not a variable of the case")
            var = case.variable(name)
            lo, hi = offsets[name]
            claimed = claimed_numbers(case, f"{key}.{name}", value, var.shape, f"the gradient for {name}")
            torch_value = t.error or torch_plain(t.jacobian[0, lo:hi].reshape(var.shape))
            yield f"∂f/∂{name}", claimed, jac[0, lo:hi].reshape(var.shape), torch_value
        return
    if kind == "jacobian":
        a = number_array(spec)
        if a is None:
            raise claim_error(case, key, "`jacobian` is a nested list of numbers")
        if a.shape == jac.shape:
            exact, tj = jac, (None if t.error else t.jacobian)
        elif int(np.prod(a.shape, dtype=int)) == jac.size and a.shape == tuple(out_shape) + tuple(
                d for v in case.variables for d in v.shape) and len(case.variables) == 1:
            exact, tj = jac.reshape(a.shape), (None if t.error else t.jacobian.reshape(a.shape))
        else:
            raise claim_error(case, key, f"the claimed Jacobian has shape {list(a.shape)}, "
                         f"the Jacobian has shape {list(jac.shape)} (outputs × inputs)")
        yield "Jacobian", a, exact, t.error or torch_plain(tj)
        return
    # intermediates
    if not isinstance(spec, Mapping) or not spec:
        raise claim_error(case, key, "`intermediates` maps let steps to numbers: {y: 2}")
    for step, value in spec.items():
        if step not in compiled.let_math:
            raise claim_error(case, f"{key}.{step}", f"{step!r} is not a `let` step of the case "
                         f"(steps: {list(compiled.let_math)})")
        exprs = intermediate_exprs(compiled, step)
        step_shape = compiled.let_math[step].shape
        full = tuple(out_shape) + tuple(step_shape)
        a = number_array(value)
        if a is None:
            raise claim_error(case, f"{key}.{step}", "a number or nested list of numbers")
        if a.shape == full:
            exact = exprs.reshape(full)
        elif a.shape == exprs.shape:
            exact = exprs
        else:
            raise claim_error(case, f"{key}.{step}", f"the claim has shape {list(a.shape)}; "
                         f"d output / d {step} has shape {list(full)}")
        tv = t.error
        if not t.error:
            tv = t.intermediates.get(step)
            tv = "the step does not require grad" if tv is None else torch_plain(np.asarray(tv).reshape(a.shape))
        yield f"∂f/∂{step} (let step)", a, exact, tv
