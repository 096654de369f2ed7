"""The function library of the case language: every function with its two meanings.

Each :class:`Func` keeps side by side the mathematical definition (SymPy, applied to numpy
object arrays of SymPy scalars) and the torch function that implements it (torch's own
kernel, so diffcheck tests torch's real backward formulas). The table is data; a function
that is not one-to-one has a small helper next to its row.
"""

from __future__ import annotations

import math

import numpy as np
import sympy as sp
import torch

from ..errors import ExpressionError
from . import linalg, losses, pointwise, reductions
from .reductions import logsumexp_entries, reduce
from .rows import (MAX_EXACT_DIGITS, Arr, Func, Opt, arr, count, elementwise, elementwise2, like_tensor,
                   log_softmax_of, need_ndim, pairwise, reduce_sum, softmax_of)

__all__ = ["LIBRARY", "CONSTANTS", "MAX_EXACT_DIGITS", "Arr", "Func", "Opt", "arr", "elementwise", "elementwise2"]


def _math_mean(a: Arr, dim: int | None = None) -> Arr:
    return arr(reduce_sum(a, dim) / sp.Integer(count(a, dim)))


def _math_dot(a: Arr, b: Arr) -> Arr:
    need_ndim("dot", a, (1,))
    need_ndim("dot", b, (1,))
    if a.shape != b.shape:
        raise ExpressionError(f"dot() needs vectors of one length, got {a.shape[0]} and {b.shape[0]}")
    return reduce_sum(arr(a * b))


def _math_outer(a: Arr, b: Arr) -> Arr:
    need_ndim("outer", a, (1,))
    need_ndim("outer", b, (1,))
    return arr(a[:, None] * b[None, :])


def _math_diag(a: Arr) -> Arr:
    need_ndim("diag", a, (1, 2))
    if a.ndim == 1:
        out = np.full((a.size, a.size), sp.Integer(0), dtype=object)
        for i, v in enumerate(a):
            out[i, i] = v
        return out
    return arr(np.array([a[i, i] for i in range(min(a.shape))], dtype=object))


def _math_transpose(a: Arr) -> Arr:
    need_ndim("transpose", a, (2,))
    return arr(a.T)


def _math_where(cond: Arr, a: Arr, b: Arr) -> Arr:
    pick = np.frompyfunc(lambda c, x, y: sp.Piecewise((x, c), (y, True)), 3, 1)
    return arr(pick(cond, a, b))


def _torch_sum(x, dim=None, keepdim=False):
    return torch.sum(x) if dim is None else torch.sum(x, dim=dim, keepdim=keepdim)


def _torch_mean(x, dim=None, keepdim=False):
    return torch.mean(x) if dim is None else torch.mean(x, dim=dim, keepdim=keepdim)


def _math_sum_k(a: Arr, dim=None, keepdim: bool = False) -> Arr:
    return reduce(a, dim, keepdim, lambda xs: sp.Add(*xs), "sum")


def _math_mean_k(a: Arr, dim=None, keepdim: bool = False) -> Arr:
    return reduce(a, dim, keepdim, lambda xs: sp.Add(*xs) / len(xs), "mean")


def _mathlogsumexp_entries_k(a: Arr, dim: int = -1, keepdim: bool = False) -> Arr:
    need_ndim("logsumexp", a, (1, 2, 3))
    return reduce(a, dim, keepdim, logsumexp_entries, "logsumexp")


def _torch_where(cond, a, b):
    like = a if isinstance(a, torch.Tensor) else b
    return torch.where(cond, like_tensor(a, like), like_tensor(b, like))


#: sum, mean: dim (a whole number or a tuple) and keepdim, positional or keyword, as in torch
_DIMS = Opt("dim", "ints", None, positional=True)


_KEEP = Opt("keepdim", "bool", False, positional=True)


LIBRARY: dict[str, Func] = {f.name: f for f in [
    # vectors
    Func("sum", _math_sum_k, _torch_sum, options=(_DIMS, _KEEP), torch_names=("torch.sum",)),
    Func("mean", _math_mean_k, _torch_mean, options=(_DIMS, _KEEP), torch_names=("torch.mean",)),
    Func("dot", _math_dot, torch.dot, (2, 2)),
    Func("outer", _math_outer, torch.outer, (2, 2)),
    Func("diag", _math_diag, torch.diag),
    Func("transpose", _math_transpose, lambda a: torch.transpose(a, 0, 1)),
    Func("maximum", elementwise2(lambda a, b: sp.Max(a, b)), pairwise(torch.maximum), (2, 2)),
    Func("minimum", elementwise2(lambda a, b: sp.Min(a, b)), pairwise(torch.minimum), (2, 2)),
    Func("where", _math_where, _torch_where, (3, 3)),
    # probability
    Func("softmax", softmax_of, lambda x, dim=-1: torch.softmax(x, dim=dim), dim=True, family="activation",
         torch_names=("torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax")),
    Func("log_softmax", log_softmax_of, lambda x, dim=-1: torch.log_softmax(x, dim=dim), dim=True,
         family="activation",
         torch_names=("torch.log_softmax", "torch.nn.functional.log_softmax", "torch.special.log_softmax")),
    Func("logsumexp", _mathlogsumexp_entries_k, lambda x, dim=-1, keepdim=False: torch.logsumexp(x, dim=dim, keepdim=keepdim),
         options=(Opt("dim", "ints", -1, positional=True), _KEEP), torch_names=("torch.logsumexp",)),
    # losses: mse sse cross_entropy and the rest of torch.nn.functional's are in losses.py
]}


#: named constants of the case language: (math meaning, torch meaning)
CONSTANTS: dict[str, tuple[sp.Expr, float]] = {"pi": (sp.pi, math.pi), "E": (sp.E, math.e)}



# the other families, each in its own module (rows with both meanings side by side)
for _f in pointwise.ROWS + reductions.ROWS + losses.ROWS + linalg.ROWS:
    LIBRARY[_f.name] = _f
