"""What every claim reads: its errors and results, the case's exact derivatives, its
variables and constants as exact numbers, and the case's torch implementation at one point."""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np
import sympy as sp
import torch

from ..autograd import classify_error
from ..case import Case, Check
from ..errors import CaseFileError
from ..points import torch_dtype
from ..results import ClaimRow, Details, Result, Status
from ..symbolic import CompiledCase
from .numbers import number_array, plain, rational

def claim_error(case: Case, key: str, message: str, hint: str | None = None) -> CaseFileError:
    return CaseFileError(f"in `{key}` of case {case.name!r}: {message}", case.where(key), hint, case=case.name)


def claim_result(case: Case, kind: str, status: Status, message: str, points: int, details: Details) -> Result:
    """A claim's result, built once from its verdict."""
    return Result(case=case.name, file=case.file, check=f"expect.{kind}", mode=None, dtype=None, status=status,
                  message=message, points=points, details=details)


def claim_rows_of(rows: list[dict]) -> tuple[ClaimRow, ...]:
    return tuple(ClaimRow(**row) for row in rows)


def claimed_numbers(case: Case, key: str, spec: Any, shape: tuple, what: str) -> np.ndarray:
    """Claimed numbers (finite numbers, as the loader checked) of the shape the compiled case
    gives them."""
    a = number_array(spec)
    if a.shape != tuple(shape):
        raise claim_error(case, key, f"{what} has shape {list(shape)}, the claim has shape {list(a.shape)}")
    return a


def constant_subs(compiled: CompiledCase) -> dict[sp.Symbol, sp.Rational]:
    """Each constant symbol → the exact decimal of its value (``0.1`` → 1/10)."""
    subs: dict[sp.Symbol, sp.Rational] = {}
    for name, syms in compiled.const_symbols.items():
        values = compiled.const_values[name]
        for sym, v in zip(syms.ravel(), values.ravel()):
            subs[sym] = rational(float(v))
    return subs


def point_subs(compiled: CompiledCase, point: Mapping[str, np.ndarray]) -> dict[sp.Symbol, sp.Rational]:
    subs = constant_subs(compiled)
    for name, syms in compiled.var_symbols.items():
        for sym, v in zip(syms.ravel(), point[name].ravel()):
            subs[sym] = rational(v)
    return subs


def read_point(compiled: CompiledCase, at: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """An ``at``/``start`` mapping → variable name → object array of the written numbers (the
    loader checked that it gives every variable, as finite numbers of its shape)."""
    return {v.name: number_array(at[v.name]) for v in compiled.case.variables}


def claim_env(compiled: CompiledCase) -> dict[str, np.ndarray]:
    """The names a claim may use: variables, constants (as symbols, or as exact numbers where
    the case compiled them as numbers) and let steps."""
    consts = {}
    for name, values in compiled.const_values.items():
        if name in compiled.const_symbols:
            consts[name] = compiled.const_symbols[name]
        else:
            a = np.empty(values.shape, dtype=object)
            for idx in np.ndindex(values.shape):
                a[idx] = rational(float(values[idx]))
            consts[name] = a
    return {**compiled.var_symbols, **consts, **compiled.let_math}


def torch_dtype_name(case: Case) -> str:
    return case.dtypes[0] if case.dtypes else "float64"


def variable_offsets(compiled: CompiledCase) -> dict[str, tuple[int, int]]:
    out, start = {}, 0
    for v in compiled.case.variables:
        n = int(np.prod(v.shape, dtype=int))
        out[v.name] = (start, start + n)
        start += n
    return out


def jacobian_exprs(compiled: CompiledCase) -> np.ndarray:
    """The exact Jacobian, (outputs, all input entries), reusing the case's cached target."""
    check = Check("gradient") if compiled.output.ndim == 0 else Check("jacobian")
    target = compiled.targets(check)[0]
    return np.array(target.exprs, dtype=object).reshape(target.shape)


def intermediate_exprs(compiled: CompiledCase, step: str) -> np.ndarray:
    for target in compiled.targets(Check("intermediates")):
        if target.wrt == step:
            return np.array(target.exprs, dtype=object).reshape(target.shape)
    raise KeyError(step)


class TorchAt:
    """The case's torch implementation at one point: value, Jacobian and d output / d step
    from ``torch.autograd.grad``. Failures are kept as text in ``error``."""

    def __init__(self, compiled: CompiledCase, point: Mapping[str, Any], dtype: str,
                 steps: Sequence[str] = ()):
        self.dtype = dtype
        self.error: str | None = None        # why torch has no derivatives here
        self.value_error: str | None = None  # why torch has no value here
        self.value = self.jacobian = None
        self.intermediates: dict[str, np.ndarray] = {}
        td = torch_dtype(dtype)
        try:
            leaves = [torch.tensor(np.asarray(point[v.name], dtype=np.float64), dtype=td).requires_grad_(True)
                      for v in compiled.case.variables]
            consts = {n: torch.as_tensor(v, dtype=td) for n, v in compiled.const_values.items()}
            kept: dict[str, torch.Tensor] = {}

            def keep(name, value):
                if name in steps and isinstance(value, torch.Tensor):
                    kept[name] = value
            out = compiled.forward(leaves, consts, td, on_let=keep)
            if not isinstance(out, torch.Tensor):
                out = torch.as_tensor(out, dtype=td)
            self.value = as_numpy(out.detach())
            flat = out.reshape(-1)
            kept = {n: t for n, t in kept.items() if t.requires_grad}
            with_grad = [*leaves, *kept.values()]
            rows, inter_rows = [], {s: [] for s in kept}
            for i in range(flat.numel()):
                if not flat[i].requires_grad:
                    grads = [None] * len(with_grad)
                else:
                    grads = torch.autograd.grad(flat[i], with_grad, retain_graph=True, allow_unused=True)
                parts = [(g if g is not None else torch.full_like(x, float("nan"))).reshape(-1)
                         for g, x in zip(grads[:len(leaves)], leaves)]
                rows.append(as_numpy(torch.cat(parts)) if parts else np.zeros(0))
                for (name, t), g in zip(kept.items(), grads[len(leaves):]):
                    inter_rows[name].append(as_numpy((g if g is not None else torch.full_like(t, float("nan"))).reshape(-1)))
            self.jacobian = np.array(rows)
            self.intermediates = {s: np.array(r) for s, r in inter_rows.items()}
        except Exception as err:  # torch raised: report its message beside the claim
            self.error = str(classify_error(err))
            if self.value is None:
                self.value_error = self.error


def as_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _tfloat(x: float) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else ("nan — no gradient path" if math.isnan(x) else str(x))


def torch_plain(a: np.ndarray | None) -> Any:
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return _tfloat(a)
    return plain(np.frompyfunc(_tfloat, 1, 1)(a))
