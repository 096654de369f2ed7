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
from .numbers import as_written, exact_array, floats, fmt, number_array, places_text, plain, rounding_note, texts

VALUE_KINDS = ("value", "derivative", "gradient", "jacobian", "intermediates")


#: one kind of a values entry: (label, claimed numbers, exact expressions, torch's values)
Claim = tuple[str, np.ndarray, np.ndarray, Any]


def values_claim(compiled: CompiledCase, entry: Mapping[str, Any], key: str) -> Result:
    """The result of one ``expect.values`` entry (its shape, kinds and point as the loader
    checked them): every number it claims against the exact value, torch's beside it."""
    case = compiled.case
    point = read_point(compiled, entry["at"])
    subs = point_subs(compiled, point)
    steps = list(entry["intermediates"]) if entry.get("intermediates") else []
    dtype = torch_dtype_name(case)
    t = TorchAt(compiled, {n: np.asarray(plain(a), dtype=np.float64) for n, a in point.items()}, dtype, steps)
    shown_at = {n: plain(a) for n, a in point.items()}
    rows, failures, count = [], [], 0
    for kind in (k for k in VALUE_KINDS if k in entry):
        for label, claimed, exact_exprs, torch_value in _READERS[kind](compiled, entry[kind], f"{key}.{kind}", t):
            exact = exact_array(np.frompyfunc(lambda e: sp.sympify(e).xreplace(subs), 1, 1)(exact_exprs)
                                if exact_exprs.ndim else np.array(sp.sympify(exact_exprs[()]).xreplace(subs),
                                                                  dtype=object))
            holds = bool(np.all(np.frompyfunc(lambda e, c: e.holds(c), 2, 1)(exact, claimed)))
            count += claimed.size
            row = {"label": label, "claim": f"{label} = {fmt(claimed)}", "at": shown_at,
                   "claimed": as_written(claimed), "exact": texts(exact), "exact_float": floats(exact),
                   "torch": torch_value, "method": places_text(claimed), "holds": holds}
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


def _value(compiled: CompiledCase, spec: Any, key: str, t: TorchAt) -> list[Claim]:
    claimed = claimed_numbers(compiled.case, key, spec, compiled.out_shape, "the value")
    return [("f", claimed, compiled.output, t.value_error or torch_plain(t.value))]


def _derivative(compiled: CompiledCase, spec: Any, key: str, t: TorchAt) -> list[Claim]:
    case = compiled.case
    if len(case.variables) != 1 or case.variables[0].shape or compiled.output.ndim:
        raise claim_error(case, key, "`derivative` needs a scalar function of one scalar variable",
                          "use `gradient` or `jacobian`")
    claimed = claimed_numbers(case, key, spec, (), "the derivative")
    exact = np.array(jacobian_exprs(compiled)[0, 0], dtype=object)
    return [(f"df/d{case.variables[0].name}", claimed, exact, t.error or torch_plain(t.jacobian[0, 0]))]


def _gradient(compiled: CompiledCase, spec: Any, key: str, t: TorchAt) -> list[Claim]:
    """Per variable named (numbers alone stand for the one variable of the case)."""
    case = compiled.case
    if compiled.output.ndim:
        raise claim_error(case, key, "`gradient` needs a scalar output", "use `jacobian` for a vector output")
    if not isinstance(spec, Mapping):
        spec = {case.variables[0].name: spec}
    jac, offsets = jacobian_exprs(compiled), variable_offsets(compiled)
    out = []
    for name, value in spec.items():
        var = case.variable(name)
        lo, hi = offsets[name]
        claimed = claimed_numbers(case, f"{key}.{name}", value, var.shape, f"the gradient for {name}")
        torch_value = t.error or torch_plain(t.jacobian[0, lo:hi].reshape(var.shape))
        out.append((f"∂f/∂{name}", claimed, jac[0, lo:hi].reshape(var.shape), torch_value))
    return out


def _jacobian(compiled: CompiledCase, spec: Any, key: str, t: TorchAt) -> list[Claim]:
    """(outputs × inputs), or for a case of one variable the output's shape then the variable's."""
    case = compiled.case
    jac = jacobian_exprs(compiled)
    a = number_array(spec)
    if a.shape == jac.shape:
        exact, tj = jac, (None if t.error else t.jacobian)
    elif int(np.prod(a.shape, dtype=int)) == jac.size and a.shape == tuple(compiled.out_shape) + tuple(
            d for v in case.variables for d in v.shape) and len(case.variables) == 1:
        exact, tj = jac.reshape(a.shape), (None if t.error else t.jacobian.reshape(a.shape))
    else:
        raise claim_error(case, key, f"the claimed Jacobian has shape {list(a.shape)}, "
                          f"the Jacobian has shape {list(jac.shape)} (outputs × inputs)")
    return [("Jacobian", a, exact, t.error or torch_plain(tj))]


def _intermediates(compiled: CompiledCase, spec: Mapping[str, Any], key: str, t: TorchAt) -> list[Claim]:
    """Per `let` step named (the loader checked the names): d output / d step."""
    out = []
    for step, value in spec.items():
        exprs = intermediate_exprs(compiled, step)
        full = tuple(compiled.out_shape) + tuple(compiled.let_math[step].shape)
        a = number_array(value)
        if a.shape == full:
            exact = exprs.reshape(full)
        elif a.shape == exprs.shape:
            exact = exprs
        else:
            raise claim_error(compiled.case, f"{key}.{step}", f"the claim has shape {list(a.shape)}; "
                              f"d output / d {step} has shape {list(full)}")
        tv = t.error
        if not t.error:
            tv = t.intermediates.get(step)
            tv = "the step does not require grad" if tv is None else torch_plain(np.asarray(tv).reshape(a.shape))
        out.append((f"∂f/∂{step} (let step)", a, exact, tv))
    return out


_READERS = {"value": _value, "derivative": _derivative, "gradient": _gradient, "jacobian": _jacobian,
            "intermediates": _intermediates}
