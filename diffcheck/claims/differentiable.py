"""``differentiable``: whether torch can differentiate the function at all."""

from __future__ import annotations

import numpy as np
import sympy as sp
import torch

from ..autograd import CannotDifferentiate, classify_error
from ..results import ERROR, FAIL, PASS, ClaimRow, Details, Result
from ..symbolic import CompiledCase
from .context import as_numpy, claim_result, jacobian_exprs, torch_plain
from .numbers import MAX_EXACT_TEXT, fmt, plain_floats, short

def differentiable_claim(compiled: CompiledCase, claim: bool) -> Result:
    case = compiled.case
    point = _first_point(compiled)
    td = torch.float64
    shown = {n: plain_floats(v) for n, v in point.items()}
    torch_says, can = None, None
    try:
        leaves = [torch.tensor(np.asarray(point[v.name], dtype=np.float64), dtype=td).requires_grad_(True)
                  for v in case.variables]
        consts = {n: torch.as_tensor(v, dtype=td) for n, v in compiled.const_values.items()}
        out = compiled.forward(leaves, consts, td)
        if not isinstance(out, torch.Tensor) or not out.requires_grad or out.grad_fn is None:
            can, torch_says = False, "the output has no grad_fn (no gradient path to the variables)"
        else:
            grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
            if all(g is None for g in grads):
                can, torch_says = False, "no gradient path: every gradient is None"
            else:
                can = True
                torch_says = "gradient " + fmt({v.name: torch_plain(as_numpy(g)) if g is not None else "None"
                                                 for v, g in zip(case.variables, grads)})
    except Exception as err:
        classified = classify_error(err)
        if isinstance(classified, CannotDifferentiate):
            can, torch_says = False, f"torch raised: {classified}"
        else:
            row = ClaimRow(label="torch can differentiate it", at=shown, claimed=claim, exact=None,
                           torch=str(classified), holds=None)
            return claim_result(case, "differentiable", ERROR,
                           f"torch raised while computing the function: {classified}", 0, Details(claim=(row,)))
    jac = jacobian_exprs(compiled)
    names = compiled.input_names()
    exact = "; ".join(f"∂{out}/∂{col} = {short(sp.sympify(jac[i, j]))}"
                      for i, out in enumerate(compiled.output_names()) for j, col in enumerate(names))
    exact = exact if len(exact) <= MAX_EXACT_TEXT else exact[:MAX_EXACT_TEXT] + " …"
    holds = can == claim
    row = ClaimRow(label="torch can differentiate it", claim=f"differentiable: {str(claim).lower()}",
                   at=shown, claimed=str(claim).lower(), exact=exact, torch=torch_says, holds=holds)
    word = "can" if can else "cannot"
    message = f"torch {word} differentiate it at {fmt(shown)}: {torch_says}"
    status = PASS
    if not holds:
        status = FAIL
        message = f"claims differentiable: {str(claim).lower()}, but " + message
    return claim_result(case, "differentiable", status, message, 1, Details(claim=(row,)))


def _first_point(compiled: CompiledCase) -> dict[str, np.ndarray]:
    case = compiled.case
    if case.points:
        return {v.name: np.asarray(case.points[0][v.name], dtype=np.float64) for v in case.variables}
    rng = np.random.default_rng(case.seed)
    return {v.name: rng.uniform(v.domain[0], v.domain[1], size=v.shape) for v in case.variables}
