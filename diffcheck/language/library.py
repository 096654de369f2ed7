"""The function library of the case language: every function with its two meanings.

Each :class:`Func` keeps side by side the mathematical definition (SymPy, applied to numpy
object arrays of SymPy scalars) and the torch function that implements it (torch's own
kernel, so diffcheck tests torch's real backward formulas). The table is data; a function
that is not one-to-one has a small helper next to its row.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import sympy as sp
import torch
import torch.nn.functional as F

from ..errors import ExpressionError

Arr = np.ndarray  # numpy object array of SymPy expressions (0-d for a scalar)

MAX_EXACT_DIGITS = 2_000  # digits an exact constant (a power, exp(n·log b)) may have


def arr(x: Any) -> Arr:
    """``x`` as a numpy object array (0-d for a scalar)."""
    if isinstance(x, np.ndarray):
        return x if x.dtype == object else x.astype(object)
    out = np.empty((), dtype=object)
    out[()] = sp.sympify(x) if isinstance(x, (int, float)) else x
    return out


def elementwise(fn: Callable[..., sp.Expr]) -> Callable[..., Arr]:
    """Lift a SymPy scalar function to object arrays, broadcasting its arguments."""
    ufunc = np.frompyfunc(fn, 1, 1)

    def apply(a: Arr) -> Arr:
        return arr(ufunc(a))

    return apply


def elementwise2(fn: Callable[[sp.Expr, sp.Expr], sp.Expr]) -> Callable[[Arr, Arr], Arr]:
    ufunc = np.frompyfunc(fn, 2, 1)
    return lambda a, b: arr(ufunc(a, b))


def _reduce_sum(a: Arr, dim: int | None = None, keepdims: bool = False) -> Arr:
    if a.ndim == 0:
        return a
    if dim is None:
        return arr(sp.Add(*a.ravel()))
    moved = np.moveaxis(a, dim, -1)
    out = np.empty(moved.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = sp.Add(*moved[idx])
    if keepdims:
        out = np.expand_dims(out, dim if dim >= 0 else a.ndim + dim)
    return arr(out)


def _count(a: Arr, dim: int | None) -> int:
    return a.size if dim is None else a.shape[dim]


def _need_ndim(name: str, a: Arr, ndims: tuple[int, ...]) -> None:
    if a.ndim not in ndims:
        want = " or ".join(f"{n}-d" for n in ndims)
        raise ExpressionError(f"{name}() needs a {want} argument, got shape {list(a.shape)}")


# --- math meanings that are more than an elementwise SymPy function ---------------------

_LN10 = math.log(10)


def _exp(x):
    """``sp.exp`` that refuses to build an astronomically large exact number.

    SymPy rewrites exp(c + n·log(b)) as b**n·exp(c) and computes b**n exactly: exp(x + 10**10*log(2))
    takes minutes and gigabytes. A constant term with a log in it is therefore bounded first."""
    for term in sp.Add.make_args(x):
        if term.free_symbols or not term.has(sp.log):
            continue
        size = sp.Abs(term).evalf(5)
        if size.is_finite and size > MAX_EXACT_DIGITS * _LN10:
            raise ExpressionError(f"exp() of a constant as large as {sp.N(term, 3)} is too large to compute exactly")
    return sp.exp(x)


def _math_softmax(a: Arr, dim: int = -1) -> Arr:
    _need_ndim("softmax", a, (1, 2, 3))
    e = elementwise(_exp)(a)
    return arr(e / _reduce_sum(e, dim, keepdims=True))


def _math_logsumexp(a: Arr, dim: int = -1, keepdims: bool = False) -> Arr:
    _need_ndim("logsumexp", a, (1, 2, 3))
    return elementwise(sp.log)(_reduce_sum(elementwise(_exp)(a), dim, keepdims))


def _math_log_softmax(a: Arr, dim: int = -1) -> Arr:
    return arr(a - _math_logsumexp(a, dim, keepdims=True))


def _math_mean(a: Arr, dim: int | None = None) -> Arr:
    return arr(_reduce_sum(a, dim) / sp.Integer(_count(a, dim)))


def _math_dot(a: Arr, b: Arr) -> Arr:
    _need_ndim("dot", a, (1,))
    _need_ndim("dot", b, (1,))
    if a.shape != b.shape:
        raise ExpressionError(f"dot() needs vectors of one length, got {a.shape[0]} and {b.shape[0]}")
    return _reduce_sum(arr(a * b))


def _math_outer(a: Arr, b: Arr) -> Arr:
    _need_ndim("outer", a, (1,))
    _need_ndim("outer", b, (1,))
    return arr(a[:, None] * b[None, :])


def _math_diag(a: Arr) -> Arr:
    _need_ndim("diag", a, (1, 2))
    if a.ndim == 1:
        out = np.full((a.size, a.size), sp.Integer(0), dtype=object)
        for i, v in enumerate(a):
            out[i, i] = v
        return out
    return arr(np.array([a[i, i] for i in range(min(a.shape))], dtype=object))


def _math_transpose(a: Arr) -> Arr:
    _need_ndim("transpose", a, (2,))
    return arr(a.T)


def _math_where(cond: Arr, a: Arr, b: Arr) -> Arr:
    pick = np.frompyfunc(lambda c, x, y: sp.Piecewise((x, c), (y, True)), 3, 1)
    return arr(pick(cond, a, b))


# --- torch meanings that are more than one call ------------------------------------------

def _t(x, like: torch.Tensor):
    """A Python number as a tensor of ``like``'s dtype and device (torch.maximum etc. want tensors)."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(x, dtype=like.dtype, device=like.device)


def _pair(fn):
    def apply(a, b):
        if not isinstance(a, torch.Tensor):
            a = _t(a, b)
        return fn(a, _t(b, a))
    return apply


def _torch_sum(x, dim=None, keepdim=False):
    return torch.sum(x) if dim is None else torch.sum(x, dim=dim, keepdim=keepdim)


def _torch_mean(x, dim=None, keepdim=False):
    return torch.mean(x) if dim is None else torch.mean(x, dim=dim, keepdim=keepdim)


def _math_sum_k(a: Arr, dim=None, keepdim: bool = False) -> Arr:
    from .reductions import reduce
    return reduce(a, dim, keepdim, lambda xs: sp.Add(*xs), "sum")


def _math_mean_k(a: Arr, dim=None, keepdim: bool = False) -> Arr:
    from .reductions import reduce
    return reduce(a, dim, keepdim, lambda xs: sp.Add(*xs) / len(xs), "mean")


def _math_logsumexp_k(a: Arr, dim: int = -1, keepdim: bool = False) -> Arr:
    from .reductions import _logsumexp, reduce
    _need_ndim("logsumexp", a, (1, 2, 3))
    return reduce(a, dim, keepdim, _logsumexp, "logsumexp")




def _torch_where(cond, a, b):
    like = a if isinstance(a, torch.Tensor) else b
    return torch.where(cond, _t(a, like), _t(b, like))


@dataclass(frozen=True)
class Opt:
    """An option of a library function, spelled as torch spells it.

    ``kind``: ``int``, ``ints`` (a whole number or a tuple/list of them), ``number``, ``bool``,
    ``choice`` (a string from ``choices``), ``tensor`` (an expression of the case, e.g. a
    constant's name), ``number_or_choice`` (a number or a string from ``choices``, e.g. a
    norm's ``p``). Both meanings receive it under ``name``; an option not given is not passed,
    so both meanings use their own default (``default`` documents torch's)."""

    name: str
    kind: str
    default: Any = None
    choices: tuple[str, ...] = ()
    positional: bool = False   # may follow the tensor arguments positionally (in table order)
    inf: bool = False          # a number option that takes ``inf`` / ``-inf``
    low: Any = None            # a number option's smallest value
    nullable: bool = False     # ``None`` is accepted (it always is when the default is None)

    def describe(self) -> str:
        if self.kind == "number_or_choice":
            return "a number" + (" or inf" if self.inf else "") + " or one of " + ", ".join(map(repr, self.choices))
        return {"int": "a whole number", "ints": "a whole number or a tuple of them",
                "number": "a number" + (" or inf" if self.inf else ""), "bool": "True or False",
                "tensor": "an expression"}.get(self.kind, self.kind)


@dataclass(frozen=True)
class Func:
    """A library function: its math meaning on object arrays and its torch meaning."""

    name: str
    math: Callable[..., Arr]
    torch: Callable[..., Any]
    nargs: tuple[int, int] = (1, 1)
    dim: bool = False            # accepts ``dim=`` (a whole number)
    number_args: tuple[int, ...] = ()  # positions that must be plain numbers (e.g. a slope)
    doc: str = ""
    options: tuple[Opt, ...] = ()  # keyword options (``dim`` is implied by ``dim=True``)
    #: the torch callables the torch meaning calls, dotted as a case's `torch:` key spells them
    torch_names: tuple[str, ...] = ()
    #: dtypes torch supports for it (on CPU), for its control and the docs; () = all four
    dtypes: tuple[str, ...] = ()
    #: its kinks, singular points and thresholds, in words (the docs and the controls)
    special: str = ""
    family: str = ""
    #: modes torch differentiates it in; () = all three (reverse, backward, forward)
    modes: tuple[str, ...] = ()

    @property
    def opts(self) -> tuple[Opt, ...]:
        if self.dim and not any(o.name == "dim" for o in self.options):
            return (Opt("dim", "int", -1),) + self.options
        return self.options

    def signature(self) -> str:
        args = ["x", "y", "z", "w"][: self.nargs[1]] if self.nargs[1] <= 4 else [f"a{i}" for i in range(self.nargs[1])]
        parts = args[:]
        for o in self.opts:
            default = repr(o.default)
            parts.append(f"{o.name}={default}")
        return f"{self.name}({', '.join(parts)})"


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
    Func("maximum", elementwise2(lambda a, b: sp.Max(a, b)), _pair(torch.maximum), (2, 2)),
    Func("minimum", elementwise2(lambda a, b: sp.Min(a, b)), _pair(torch.minimum), (2, 2)),
    Func("where", _math_where, _torch_where, (3, 3)),
    # probability
    Func("softmax", _math_softmax, lambda x, dim=-1: torch.softmax(x, dim=dim), dim=True, family="activation",
         torch_names=("torch.softmax", "torch.nn.functional.softmax", "torch.special.softmax")),
    Func("log_softmax", _math_log_softmax, lambda x, dim=-1: torch.log_softmax(x, dim=dim), dim=True,
         family="activation",
         torch_names=("torch.log_softmax", "torch.nn.functional.log_softmax", "torch.special.log_softmax")),
    Func("logsumexp", _math_logsumexp_k, lambda x, dim=-1, keepdim=False: torch.logsumexp(x, dim=dim, keepdim=keepdim),
         options=(Opt("dim", "ints", -1, positional=True), _KEEP), torch_names=("torch.logsumexp",)),
    # losses: mse sse cross_entropy and the rest of torch.nn.functional's are in losses.py
]}

#: named constants of the case language: (math meaning, torch meaning)
CONSTANTS: dict[str, tuple[sp.Expr, float]] = {"pi": (sp.pi, math.pi), "E": (sp.E, math.e)}


# --- the other families, each in its own module (rows with both meanings side by side) --------
# imported last: they build on the helpers above
from . import linalg as _linalg  # noqa: E402
from . import losses as _losses  # noqa: E402
from . import pointwise as _pointwise  # noqa: E402
from . import reductions as _reductions  # noqa: E402

for _f in _pointwise.ROWS + _reductions.ROWS + _losses.ROWS + _linalg.ROWS:
    LIBRARY[_f.name] = _f
