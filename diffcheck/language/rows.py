"""What a row of the function library is made of: :class:`Func` (a function with its two
meanings) and :class:`Opt` (an option spelled as torch spells it), and the helpers the rows of
every family share (numpy object arrays of SymPy scalars, reductions, torch tensors like
another). A leaf: the family modules and :mod:`.library` build on it, never the reverse."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import sympy as sp
import torch

from ..errors import ExpressionError

_LN10 = math.log(10)
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


def reduce_sum(a: Arr, dim: int | None = None, keepdims: bool = False) -> Arr:
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


def count(a: Arr, dim: int | None) -> int:
    return a.size if dim is None else a.shape[dim]


def need_ndim(name: str, a: Arr, ndims: tuple[int, ...]) -> None:
    if a.ndim not in ndims:
        want = " or ".join(f"{n}-d" for n in ndims)
        raise ExpressionError(f"{name}() needs a {want} argument, got shape {list(a.shape)}")


def exact_exp(x):
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


def softmax_of(a: Arr, dim: int = -1) -> Arr:
    need_ndim("softmax", a, (1, 2, 3))
    e = elementwise(exact_exp)(a)
    return arr(e / reduce_sum(e, dim, keepdims=True))


def logsumexp_of(a: Arr, dim: int = -1, keepdims: bool = False) -> Arr:
    need_ndim("logsumexp", a, (1, 2, 3))
    return elementwise(sp.log)(reduce_sum(elementwise(exact_exp)(a), dim, keepdims))


def log_softmax_of(a: Arr, dim: int = -1) -> Arr:
    return arr(a - logsumexp_of(a, dim, keepdims=True))


def like_tensor(x, like: torch.Tensor):
    """A Python number as a tensor of ``like``'s dtype and device (torch.maximum etc. want tensors)."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.as_tensor(x, dtype=like.dtype, device=like.device)


def pairwise(fn):
    def apply(a, b):
        if not isinstance(a, torch.Tensor):
            a = like_tensor(a, b)
        return fn(a, like_tensor(b, a))
    return apply


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

