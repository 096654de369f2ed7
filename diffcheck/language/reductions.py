"""Reductions and scans of the case language, each with its two meanings side by side.

``prod cumsum cumprod logcumsumexp amax amin max min norm vector_norm matrix_norm var std``
with ``dim`` and ``keepdim`` (and ``correction``, ``p``/``ord``) spelled as torch spells them.
The math meanings are compositions of SymPy sums, products, Abs, Max/Min, log, exp and sqrt
over the reduced axes; the torch meanings call torch's own kernels with the options given.

Imported by :mod:`diffcheck.language.library`, which adds :data:`ROWS` to its table.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import sympy as sp
import torch

from ..errors import ExpressionError
from .rows import Arr, Func, Opt, exact_exp, arr

ALL = ("float64", "float32", "float16", "bfloat16")


# --- the shared machinery: reduce or scan an object array over some axes -----------------

def axes(name: str, a: Arr, dim: Any) -> tuple[int, ...]:
    """``dim`` (None, a whole number or a tuple of them) as sorted non-negative axes of ``a``."""
    if dim is None:
        return tuple(range(a.ndim))
    dims = dim if isinstance(dim, tuple) else (dim,)
    nd = max(a.ndim, 1)
    out = []
    for d in dims:
        if not -nd <= d < nd:
            raise ExpressionError(f"{name}(): dim {d} is out of bounds for a value of shape {list(a.shape)}")
        out.append(d % nd)
    if len(set(out)) != len(out):
        raise ExpressionError(f"{name}(): dim {dim} names an axis twice")
    return tuple(sorted(out)) if a.ndim else ()


def reduce(a: Arr, dim: Any, keepdim: bool, fn: Callable[[list], sp.Expr], name: str = "reduce") -> Arr:
    """``fn`` of the entries of ``a`` along ``dim`` (every axis when None)."""
    if a.ndim == 0:
        return arr(fn([a[()]]))
    ax = axes(name, a, dim)
    keep = [i for i in range(a.ndim) if i not in ax]
    moved = np.transpose(a, keep + list(ax))
    lead = moved.shape[:len(keep)]
    out = np.empty(lead, dtype=object)
    for idx in np.ndindex(lead):
        out[idx] = fn(list(moved[idx].ravel()))
    if keepdim:
        out = out.reshape([1 if i in ax else a.shape[i] for i in range(a.ndim)])
    return arr(out)


def scan(a: Arr, dim: Any, fn: Callable[[list], sp.Expr], name: str) -> Arr:
    """``out[..., i] = fn(a[..., :i+1])`` along ``dim`` (torch's cumsum and friends)."""
    if dim is None:
        raise ExpressionError(f"{name}() needs dim= (torch has no default for it)")
    if a.ndim == 0:
        return arr(fn([a[()]]))
    (d,) = axes(name, a, dim)
    moved = np.moveaxis(a, d, -1)
    out = np.empty(moved.shape, dtype=object)
    for idx in np.ndindex(moved.shape[:-1]):
        row = list(moved[idx])
        for i in range(len(row)):
            out[idx + (i,)] = fn(row[: i + 1])
    return arr(np.moveaxis(out, -1, d))


def _size(a: Arr, dim: Any, name: str) -> int:
    if a.ndim == 0:
        return 1
    return int(np.prod([a.shape[i] for i in axes(name, a, dim)]))


def logsumexp_entries(xs: list) -> sp.Expr:
    return sp.log(sp.Add(*[exact_exp(x) for x in xs]))


# --- math meanings -----------------------------------------------------------------------

def _math_prod(a, dim=None, keepdim=False):
    return reduce(a, dim, keepdim, lambda xs: sp.Mul(*xs), "prod")


def _math_amax(a, dim=None, keepdim=False):
    return reduce(a, dim, keepdim, lambda xs: sp.Max(*xs), "amax")


def _math_amin(a, dim=None, keepdim=False):
    return reduce(a, dim, keepdim, lambda xs: sp.Min(*xs), "amin")


def _math_var(a, dim=None, correction=1, keepdim=False, name="var"):
    n = _size(a, dim, name)
    dof = sp.Integer(n) - sp.sympify(correction)
    if dof <= 0:
        # torch returns inf or nan here: no derivative to check
        raise ExpressionError(f"{name}(): {n} entries with correction={correction} leave no degrees of freedom")

    def var(xs):
        m = sp.Add(*xs) / len(xs)
        return sp.Add(*[(x - m) ** 2 for x in xs]) / dof
    return reduce(a, dim, keepdim, var, name)


def _math_std(a, dim=None, correction=1, keepdim=False):
    return arr(np.frompyfunc(sp.sqrt, 1, 1)(_math_var(a, dim, correction, keepdim, "std")))


def _p_norm(p) -> Callable[[list], sp.Expr]:
    """The vector p-norm of a list of entries (p a number, inf or -inf)."""
    if p == float("inf"):
        return lambda xs: sp.Max(*[sp.Abs(x) for x in xs])
    if p == float("-inf"):
        return lambda xs: sp.Min(*[sp.Abs(x) for x in xs])
    p = sp.nsimplify(p) if not isinstance(p, sp.Basic) else p
    if p == 0:
        raise ExpressionError("a norm with p=0 counts nonzero entries: its derivative is 0 where it "
                              "is defined; it is not in the library")
    if p == 1:
        return lambda xs: sp.Add(*[sp.Abs(x) for x in xs])
    if p == 2:
        return lambda xs: sp.sqrt(sp.Add(*[x ** 2 for x in xs]))
    if p.is_even:  # |x|**p = x**p: no Abs, no kink
        return lambda xs: sp.Add(*[x ** p for x in xs]) ** (1 / p)
    return lambda xs: sp.Add(*[sp.Abs(x) ** p for x in xs]) ** (1 / p)


def vector_norm_of(a, ord=2, dim=None, keepdim=False, name="vector_norm"):
    if isinstance(ord, str):
        raise ExpressionError(f"{name}(): ord={ord!r} is a matrix norm (use matrix_norm)")
    return reduce(a, dim, keepdim, _p_norm(ord), name)


def matrix_norm_of(a, ord="fro", dim=(-2, -1), keepdim=False, name="matrix_norm"):
    if a.ndim < 2:
        raise ExpressionError(f"{name}() needs a matrix, got shape {list(a.shape)}")
    if ord == "fro":
        return reduce(a, dim, keepdim, _p_norm(2), name)
    if ord in ("nuc", 2, -2):
        raise ExpressionError(f"{name}(): ord={ord!r} needs the singular values, which the library "
                              "does not compute exactly")
    if not isinstance(dim, tuple) or len(dim) != 2:
        raise ExpressionError(f"{name}(): dim must name two axes")
    if ord not in (1, -1, float("inf"), float("-inf")):
        raise ExpressionError(f"{name}(): ord={ord!r} is not a matrix norm torch has")
    r, c = axes(name, a, dim)
    # ord 1 / -1: the largest / smallest column sum of |a|; inf / -inf: row sums
    along, other = (r, c) if ord in (1, -1) else (c, r)
    pick = sp.Max if ord in (1, float("inf")) else sp.Min
    sums = reduce(arr(np.frompyfunc(sp.Abs, 1, 1)(a)), along, True, lambda xs: sp.Add(*xs), name)
    out = reduce(sums, other, True, lambda xs: pick(*xs), name)
    return out if keepdim else arr(out.reshape([n for i, n in enumerate(out.shape) if i not in (r, c)]))


def _math_norm(a, p="fro", dim=None, keepdim=False):
    """torch.norm: p='fro' is the 2-norm of the entries reduced; a number is a vector p-norm."""
    if p == "fro":
        return reduce(a, dim, keepdim, _p_norm(2), "norm")
    if p == "nuc":
        raise ExpressionError("norm(): p='nuc' needs the singular values, which the library does not "
                              "compute exactly")
    return vector_norm_of(a, p, dim, keepdim, "norm")


def _math_max(a, dim=None, keepdim=False):
    return _math_amax(a, dim, keepdim)


def _math_min(a, dim=None, keepdim=False):
    return _math_amin(a, dim, keepdim)


# --- torch meanings ----------------------------------------------------------------------

def _torch_prod(x, dim=None, keepdim=False):
    return torch.prod(x) if dim is None else torch.prod(x, dim, keepdim=keepdim)


def _torch_scan(fn):
    return lambda x, dim=None: fn(x, dim)


def _torch_amax(x, dim=(), keepdim=False):
    return torch.amax(x, dim=() if dim is None else dim, keepdim=keepdim)


def _torch_amin(x, dim=(), keepdim=False):
    return torch.amin(x, dim=() if dim is None else dim, keepdim=keepdim)


def _torch_max(x, dim=None, keepdim=False):
    return torch.max(x) if dim is None else torch.max(x, dim, keepdim=keepdim).values


def _torch_min(x, dim=None, keepdim=False):
    return torch.min(x) if dim is None else torch.min(x, dim, keepdim=keepdim).values


def _varlike(fn):
    def apply(x, dim=None, correction=1, keepdim=False):
        return fn(x, dim=dim, correction=correction, keepdim=keepdim)
    return apply


def _torch_norm(x, p="fro", dim=None, keepdim=False):
    return torch.norm(x, p=p, dim=dim, keepdim=keepdim)


def _torch_vector_norm(x, ord=2, dim=None, keepdim=False):
    return torch.linalg.vector_norm(x, ord=ord, dim=dim, keepdim=keepdim)


def _torch_matrix_norm(x, ord="fro", dim=(-2, -1), keepdim=False):
    return torch.linalg.matrix_norm(x, ord=ord, dim=dim, keepdim=keepdim)


# --- the rows ----------------------------------------------------------------------------

DIMS = Opt("dim", "ints", None, positional=True)
DIM1 = Opt("dim", "int", None, positional=True)
KEEP = Opt("keepdim", "bool", False, positional=True)
CORRECTION = Opt("correction", "number", 1, low=0)
P = Opt("p", "number_or_choice", "fro", ("fro", "nuc"), positional=True, inf=True)
ORD = Opt("ord", "number", 2, positional=True, inf=True)
MORD = Opt("ord", "number_or_choice", "fro", ("fro", "nuc"), positional=True, inf=True)

TIE = "ties (two equal entries): any convex combination of the tied entries' gradients is a subgradient"
ROWS: list[Func] = [
    Func("prod", _math_prod, _torch_prod, options=(DIM1, KEEP), torch_names=("torch.prod",),
         dtypes=ALL, family="reductions", doc="product of the entries (along dim)",
         special="zeros: one zero leaves the product of the others as the gradient; two zeros give 0"),
    Func("cumsum", lambda a, dim=None: scan(a, dim, lambda xs: sp.Add(*xs), "cumsum"),
         _torch_scan(torch.cumsum), options=(DIM1,), torch_names=("torch.cumsum",),
         dtypes=ALL, family="scans", doc="running sum along dim (dim= required)"),
    Func("cumprod", lambda a, dim=None: scan(a, dim, lambda xs: sp.Mul(*xs), "cumprod"),
         _torch_scan(torch.cumprod), options=(DIM1,), torch_names=("torch.cumprod",),
         dtypes=ALL, family="scans", doc="running product along dim (dim= required)",
         special="zeros: torch's backward divides by the entries except where one is 0"),
    Func("logcumsumexp", lambda a, dim=None: scan(a, dim, logsumexp_entries, "logcumsumexp"),
         _torch_scan(torch.logcumsumexp), options=(DIM1,), torch_names=("torch.logcumsumexp",),
         dtypes=ALL, family="scans",
         doc="log of the running sum of exp along dim (dim= required)"),
    Func("amax", _math_amax, _torch_amax, options=(DIMS, KEEP), torch_names=("torch.amax",),
         dtypes=ALL, family="reductions", doc="largest entry (along dim); ties share the gradient evenly",
         special=TIE),
    Func("amin", _math_amin, _torch_amin, options=(DIMS, KEEP), torch_names=("torch.amin",),
         dtypes=ALL, family="reductions", doc="smallest entry (along dim); ties share the gradient evenly",
         special=TIE),
    Func("max", _math_max, _torch_max, options=(DIM1, KEEP), torch_names=("torch.max",),
         dtypes=ALL, family="reductions",
         doc="largest entry; with dim, the values of torch.max(x, dim)", special=TIE),
    Func("min", _math_min, _torch_min, options=(DIM1, KEEP), torch_names=("torch.min",),
         dtypes=ALL, family="reductions",
         doc="smallest entry; with dim, the values of torch.min(x, dim)", special=TIE),
    Func("var", lambda a, dim=None, correction=1, keepdim=False: _math_var(a, dim, correction, keepdim),
         _varlike(torch.var), options=(DIMS, CORRECTION, KEEP), torch_names=("torch.var",),
         dtypes=ALL, family="reductions", doc="Σ(x−mean)²/(N−correction) (along dim)"),
    Func("std", _math_std, _varlike(torch.std), options=(DIMS, CORRECTION, KEEP),
         torch_names=("torch.std",), dtypes=ALL, family="reductions", doc="sqrt(var)",
         special="all entries equal: std = 0 and its derivative is undefined (singular)"),
    Func("norm", _math_norm, _torch_norm, options=(P, DIMS, KEEP), torch_names=("torch.norm",),
         dtypes=ALL, family="reductions",
         doc="torch.norm: p='fro' (default) or a vector p-norm (p a number, inf, -inf)",
         special="x = 0: the 2-norm's derivative is undefined (singular); p=1 and inf have kinks "
                 "at zero entries and ties"),
    Func("vector_norm", vector_norm_of, _torch_vector_norm, options=(ORD, DIMS, KEEP),
         torch_names=("torch.linalg.vector_norm",), dtypes=ALL, family="reductions",
         doc="(Σ|x|^ord)^(1/ord); ord inf/-inf: max/min |x|",
         special="x = 0 (singular for ord > 1); kinks at zero entries (ord ≤ 1) and ties (inf)"),
    Func("matrix_norm", matrix_norm_of, _torch_matrix_norm,
         options=(MORD, Opt("dim", "ints", (-2, -1)), KEEP), torch_names=("torch.linalg.matrix_norm",),
         dtypes=ALL, family="linear algebra",
         doc="ord 'fro', 1, -1, inf, -inf ('nuc', 2, -2 need singular values: refused)",
         special="the zero matrix (fro: singular); ties between column or row sums (kinks)"),
]

