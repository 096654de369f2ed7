"""Linear algebra and layers of the case language, each with its two meanings side by side.

``matmul det slogdet logdet inv solve trace matrix_power cross linalg_norm linear layer_norm
group_norm batch_norm scaled_dot_product_attention conv1d conv2d``, with the options torch
has for them spelled as torch spells them. The math meanings are exact SymPy expressions
(determinants by cofactor expansion, inverses by adjugate), meant for small sizes: a 4×4
inverse is already a large expression. The torch meanings call torch's own kernels.

Imported by :mod:`diffcheck.language.library`, which adds :data:`ROWS` to its table.
"""

from __future__ import annotations

from itertools import product
from typing import Any, Callable

import numpy as np
import sympy as sp
import torch
import torch.nn.functional as F

from ..errors import ExpressionError
from .rows import Arr, Func, Opt, exact_exp, arr
from .reductions import matrix_norm_of, vector_norm_of, axes, reduce

ALL = ("float64", "float32", "float16", "bfloat16")
F64_32 = ("float64", "float32")   # torch.linalg's CPU kernels (LAPACK) have no 16-bit versions
MAX_N = 4                          # the largest matrix det/inv/solve take exactly


# --- matrices ------------------------------------------------------------------------------

def _square(name: str, a: Arr) -> int:
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ExpressionError(f"{name}() needs square matrices, got shape {list(a.shape)}")
    n = a.shape[-1]
    if n > MAX_N:
        raise ExpressionError(f"{name}() of a {n}×{n} matrix is too large to take exactly (at most {MAX_N}×{MAX_N})")
    return n


def _per_matrix(a: Arr, fn: Callable[[sp.Matrix], Any], out_shape: tuple = ()) -> Arr:
    """``fn`` of each matrix of a batch (the last two axes)."""
    lead = a.shape[:-2]
    out = np.empty(lead + out_shape, dtype=object)
    for idx in np.ndindex(lead):
        value = fn(sp.Matrix(a[idx].tolist()))
        if out_shape:
            out[idx] = np.array(value.tolist(), dtype=object).reshape(out_shape)
        else:
            out[idx] = value
    return arr(out)


def _det(m: sp.Matrix) -> sp.Expr:
    return sp.expand(m.det(method="berkowitz")) if m.shape[0] > 1 else m[0, 0]


def _math_det(a):
    _square("det", a)
    return _per_matrix(a, _det)


def _math_slogdet(a):
    _square("slogdet", a)
    return _per_matrix(a, lambda m: sp.log(sp.Abs(_det(m))))


def _math_logdet(a):
    _square("logdet", a)
    return _per_matrix(a, lambda m: sp.log(_det(m)))


def _inverse(m: sp.Matrix) -> sp.Matrix:
    d = _det(m)
    if d == 0:
        raise ExpressionError("inv(): the matrix is singular for every value of its entries")
    return m.adjugate(method="berkowitz") / d


def _math_inv(a):
    n = _square("inv", a)
    return _per_matrix(a, _inverse, (n, n))


def _math_solve(a, b, left=True):
    n = _square("solve", a)
    if not left:
        raise ExpressionError("solve(): left=False is not in the library (solve the transposed system)")
    vector = b.ndim == 1
    bb = arr(b[:, None]) if vector else b
    if bb.shape[-2] != n:
        raise ExpressionError(f"solve(): B has {bb.shape[-2]} rows for a {n}×{n} A")
    x = np.matmul(_math_inv(a), bb)
    return arr(x[..., 0] if vector else x)


def _math_trace(a):
    if a.ndim != 2:
        raise ExpressionError(f"trace() needs a matrix, got shape {list(a.shape)}")
    return arr(sp.Add(*[a[i, i] for i in range(min(a.shape))]))


def _math_matrix_power(a, n=None):
    size = _square("matrix_power", a)
    if n is None:
        raise ExpressionError("matrix_power() needs the power n")
    if abs(n) > 16:
        raise ExpressionError("matrix_power(): |n| is at most 16 here")
    eye = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        eye[idx] = sp.Integer(1 if idx[-1] == idx[-2] else 0)
    base = a if n >= 0 else _math_inv(a)
    out = arr(eye)
    for _ in range(abs(n)):
        out = arr(np.matmul(out, base))
    del size
    return out


def _math_cross(a, b, dim=-1):
    shape = np.broadcast_shapes(a.shape, b.shape)
    a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    (d,) = axes("cross", arr(a), dim)
    if shape[d] != 3:
        raise ExpressionError(f"cross() needs 3 entries along dim {dim}, got {shape[d]}")
    a, b = np.moveaxis(a, d, -1), np.moveaxis(b, d, -1)
    out = np.stack([a[..., 1] * b[..., 2] - a[..., 2] * b[..., 1],
                    a[..., 2] * b[..., 0] - a[..., 0] * b[..., 2],
                    a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]], axis=-1)
    return arr(np.moveaxis(out, -1, d))


def _svdvals2(m: sp.Matrix) -> sp.Matrix:
    """The singular values of a 2×2 matrix, largest first: σ₁ = √((S + √(S² − 4d²))/2) with
    S = Σ aᵢⱼ² and d = det, and σ₂ = |d|/σ₁ (σ₁σ₂ = |d|), whose kink at det = 0 is an Abs."""
    total = sum(v ** 2 for v in m)
    d = _det(m)
    s1 = sp.sqrt((total + sp.sqrt(total ** 2 - 4 * d ** 2)) / 2)
    return sp.Matrix([s1, sp.Abs(d) / s1])


def _math_svdvals(a):
    if a.ndim < 2 or a.shape[-2:] != (2, 2):
        raise ExpressionError(f"svdvals() is exact here for 2×2 matrices (or batches of them), got shape {list(a.shape)}")
    return _per_matrix(a, _svdvals2, (2,))


def _math_vecdot(a, b, dim=-1):
    shape = np.broadcast_shapes(a.shape, b.shape)
    prod = arr(np.broadcast_to(a, shape) * np.broadcast_to(b, shape))
    (d,) = axes("vecdot", prod, dim)
    return arr(np.sum(prod, axis=d)) if prod.ndim > 1 \
        else arr(sp.Add(*prod.ravel()))


def _math_diagonal(a, offset=0, dim1=-2, dim2=-1):
    if a.ndim < 2:
        raise ExpressionError(f"diagonal() needs a matrix, got shape {list(a.shape)}")
    d1, d2 = axes("diagonal", a, dim1)[0], axes("diagonal", a, dim2)[0]
    if d1 == d2:
        raise ExpressionError("diagonal(): dim1 and dim2 must differ")
    return arr(np.diagonal(a, offset, d1, d2).copy())


def _math_vander(x, N=None):
    if x.ndim < 1:
        raise ExpressionError("vander() needs a vector (or a batch of them)")
    n = x.shape[-1] if N is None else N
    if not 1 <= n <= 16:
        raise ExpressionError("vander(): N is between 1 and 16 here")
    return arr(np.stack([x ** k if k else np.full(x.shape, sp.Integer(1), dtype=object) for k in range(n)], axis=-1))


def _math_matmul(a, b):
    if a.ndim == 0 or b.ndim == 0:
        raise ExpressionError("matmul() needs vectors or matrices")
    return arr(np.matmul(a, b))


def _math_linalg_norm(a, ord=None, dim=None, keepdim=False):
    """torch.linalg.norm: a vector norm of 1 axis, a matrix norm of 2; ord None is the 2-norm
    of the entries (Frobenius for a matrix)."""
    if ord is None:
        return vector_norm_of(a, 2, dim, keepdim, "linalg_norm")
    nd = 1 if dim is None and a.ndim == 1 else (len(dim) if isinstance(dim, tuple) else (1 if dim is not None else a.ndim))
    if nd == 1:
        return vector_norm_of(a, ord, dim, keepdim, "linalg_norm")
    if nd == 2:
        return matrix_norm_of(a, ord, dim if dim is not None else (-2, -1), keepdim, "linalg_norm")
    raise ExpressionError("linalg_norm() with ord needs a vector, a matrix, or dim of one or two axes")


# --- layers --------------------------------------------------------------------------------

def _math_linear(x, w, b=None):
    if w.ndim not in (1, 2):
        raise ExpressionError(f"linear() weight must be 1-d or 2-d, got shape {list(w.shape)}")
    out = np.matmul(x, w.T) if w.ndim == 2 else np.matmul(x, w)
    return arr(out + b if b is not None else out)


def _normalize(xs: list, eps) -> list:
    n = len(xs)
    m = sp.Add(*xs) / n
    var = sp.Add(*[(v - m) ** 2 for v in xs]) / n
    return [(v - m) / sp.sqrt(var + eps) for v in xs]


def _math_layer_norm(x, normalized_shape=None, weight=None, bias=None, eps=sp.Rational(1, 10 ** 5)):
    if normalized_shape is None:
        raise ExpressionError("layer_norm() needs normalized_shape")
    shape = normalized_shape if isinstance(normalized_shape, tuple) else (normalized_shape,)
    k = len(shape)
    if tuple(x.shape[x.ndim - k:]) != shape or k > x.ndim:
        raise ExpressionError(f"layer_norm(): normalized_shape {list(shape)} is not the trailing shape of "
                              f"{list(x.shape)}")
    lead = x.shape[: x.ndim - k]
    out = np.empty(x.shape, dtype=object)
    for idx in np.ndindex(lead):
        block = x[idx]
        normed = _normalize(list(block.ravel()), eps)
        out[idx] = np.array(normed, dtype=object).reshape(shape)
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return arr(out)


def _channel(v: Arr, ndim: int) -> Arr:
    """A per-channel vector shaped to broadcast over (N, C, *)."""
    return arr(v.reshape((1, -1) + (1,) * (ndim - 2)))


def _math_group_norm(x, num_groups=None, weight=None, bias=None, eps=sp.Rational(1, 10 ** 5)):
    if num_groups is None:
        raise ExpressionError("group_norm() needs num_groups")
    if x.ndim < 2:
        raise ExpressionError(f"group_norm() needs input of shape (N, C, ...), got {list(x.shape)}")
    n, c = x.shape[:2]
    if num_groups <= 0 or c % num_groups:
        raise ExpressionError(f"group_norm(): {c} channels do not split into {num_groups} groups")
    g = c // num_groups
    out = np.empty(x.shape, dtype=object)
    for i in range(n):
        for k in range(num_groups):
            block = x[i, k * g:(k + 1) * g]
            out[i, k * g:(k + 1) * g] = np.array(_normalize(list(block.ravel()), eps), dtype=object).reshape(block.shape)
    if weight is not None:
        out = out * _channel(weight, x.ndim)
    if bias is not None:
        out = out + _channel(bias, x.ndim)
    return arr(out)


def _math_batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False,
                     momentum=sp.Rational(1, 10), eps=sp.Rational(1, 10 ** 5)):
    if x.ndim < 2:
        raise ExpressionError(f"batch_norm() needs input of shape (N, C, ...), got {list(x.shape)}")
    c = x.shape[1]
    out = np.empty(x.shape, dtype=object)
    if training:
        for ch in range(c):
            block = x[:, ch]
            out[:, ch] = np.array(_normalize(list(block.ravel()), eps), dtype=object).reshape(block.shape)
    else:
        if running_mean is None or running_var is None:
            raise ExpressionError("batch_norm() needs running_mean and running_var unless training=True")
        out = (x - _channel(running_mean, x.ndim)) / np.frompyfunc(sp.sqrt, 1, 1)(_channel(running_var, x.ndim) + eps)
    if weight is not None:
        out = out * _channel(weight, x.ndim)
    if bias is not None:
        out = out + _channel(bias, x.ndim)
    return arr(out)


def _math_sdpa(q, k, v, attn_mask=None, dropout_p=0, is_causal=False, scale=None, enable_gqa=False):
    name = "scaled_dot_product_attention"
    if dropout_p:
        raise ExpressionError(f"{name}(): dropout_p must be 0 (dropout is random)")
    if enable_gqa:
        raise ExpressionError(f"{name}(): enable_gqa is not in the library")
    if q.ndim < 2 or k.ndim < 2 or v.ndim < 2:
        raise ExpressionError(f"{name}() needs query, key and value of shape (..., L, E)")
    if is_causal and attn_mask is not None:
        raise ExpressionError(f"{name}(): give attn_mask or is_causal, not both (torch refuses both)")
    e = q.shape[-1]
    s = sp.sqrt(sp.Rational(1, e)) if scale is None else sp.sympify(scale)
    scores = np.matmul(q, np.swapaxes(k, -1, -2)) * s
    if attn_mask is not None:
        scores = scores + attn_mask
    big_l, big_s = scores.shape[-2:]
    weights = np.empty(scores.shape, dtype=object)
    for idx in np.ndindex(scores.shape[:-1]):
        row = idx[-1]
        keep = [j for j in range(big_s) if not is_causal or j <= row]
        exps = [exact_exp(scores[idx + (j,)]) if j in keep else sp.Integer(0) for j in range(big_s)]
        total = sp.Add(*exps)
        for j in range(big_s):
            weights[idx + (j,)] = exps[j] / total
    return arr(np.matmul(weights, v))


def _pad(p, n: int, name: str) -> tuple:
    if isinstance(p, int):
        return (p,) * n
    if isinstance(p, tuple) and len(p) == n:
        return p
    raise ExpressionError(f"{name}(): give {n} whole numbers or one")


def _conv(name: str, nd: int, x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    unbatched = x.ndim == nd + 1
    if x.ndim not in (nd + 1, nd + 2) or w.ndim != nd + 2:
        raise ExpressionError(f"{name}() needs input (N, C, {'L' if nd == 1 else 'H, W'}) and weight "
                              f"(C_out, C_in/groups, {'K' if nd == 1 else 'kH, kW'})")
    xb = x[None] if unbatched else x
    n, cin = xb.shape[:2]
    cout, cg = w.shape[:2]
    ks = w.shape[2:]
    st, dl = _pad(stride, nd, name), _pad(dilation, nd, name)
    if groups <= 0 or cin % groups or cout % groups or cin // groups != cg:
        raise ExpressionError(f"{name}(): {cin} input channels, weight for {cg} per group and groups={groups} do not fit")
    if isinstance(padding, str):
        if padding == "valid":
            pad = (0,) * nd
            pad_lo = pad_hi = pad
        else:  # 'same'
            if any(s != 1 for s in st):
                raise ExpressionError(f"{name}(): padding='same' needs stride 1 (torch refuses it otherwise)")
            total = [d * (kk - 1) for d, kk in zip(dl, ks)]
            pad_lo = tuple(t // 2 for t in total)
            pad_hi = tuple(t - t // 2 for t in total)
    else:
        pad_lo = pad_hi = _pad(padding, nd, name)
    spatial = xb.shape[2:]
    out_sp = tuple((spatial[i] + pad_lo[i] + pad_hi[i] - dl[i] * (ks[i] - 1) - 1) // st[i] + 1 for i in range(nd))
    if any(o <= 0 for o in out_sp):
        raise ExpressionError(f"{name}(): the kernel is larger than the padded input")
    out = np.empty((n, cout) + out_sp, dtype=object)
    per = cout // groups
    for b, oc in product(range(n), range(cout)):
        g = oc // per
        for pos in np.ndindex(out_sp):
            terms = []
            for ic in range(cg):
                for kpos in np.ndindex(ks):
                    src = tuple(pos[i] * st[i] - pad_lo[i] + kpos[i] * dl[i] for i in range(nd))
                    if all(0 <= src[i] < spatial[i] for i in range(nd)):
                        terms.append(xb[(b, g * cg + ic) + src] * w[(oc, ic) + kpos])
            value = sp.Add(*terms)
            out[(b, oc) + pos] = value + bias[oc] if bias is not None else value
    return arr(out[0] if unbatched else out)


# --- torch meanings ------------------------------------------------------------------------

def _torch_slogdet(a):
    return torch.linalg.slogdet(a).logabsdet


def _torch_batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False, **kw):
    # torch updates the running statistics in place when training: give it copies, so the
    # case's constants stay as written
    if training:
        running_mean = None if running_mean is None else running_mean.detach().clone()
        running_var = None if running_var is None else running_var.detach().clone()
    return F.batch_norm(x, running_mean, running_var, weight, bias, training=training, **kw)


def _torch_layer_norm(x, normalized_shape=None, weight=None, bias=None, **kw):
    shape = normalized_shape if isinstance(normalized_shape, tuple) else (normalized_shape,)
    return F.layer_norm(x, shape, weight, bias, **kw)


def _torch_group_norm(x, num_groups=None, weight=None, bias=None, **kw):
    return F.group_norm(x, num_groups, weight, bias, **kw)


# --- the rows ------------------------------------------------------------------------------

SINGULAR = "a singular matrix: det is smooth there; log|det| and the inverse are not defined"
EPS5 = Opt("eps", "number", 1e-5, low=0)
CONV = (Opt("bias", "tensor", None, positional=True), Opt("stride", "ints", 1, positional=True),
        Opt("padding", "ints", 0, ("valid", "same"), positional=True), Opt("dilation", "ints", 1, positional=True),
        Opt("groups", "int", 1, positional=True))

ROWS: list[Func] = [
    Func("matmul", _math_matmul, torch.matmul, (2, 2), torch_names=("torch.matmul", "torch.linalg.matmul"), dtypes=ALL,
         family="linear algebra", doc="the matrix product (vectors, matrices, batches), as @"),
    Func("det", _math_det, torch.linalg.det, torch_names=("torch.linalg.det",), dtypes=F64_32,
         family="linear algebra", doc="determinant (cofactor expansion; at most 4×4)", special=SINGULAR),
    Func("slogdet", _math_slogdet, _torch_slogdet, torch_names=("torch.linalg.slogdet",), dtypes=F64_32,
         family="linear algebra", doc="log|det|: the logabsdet of torch.linalg.slogdet",
         special="a singular matrix: log|det| → −∞ (singular)"),
    Func("logdet", _math_logdet, torch.logdet, torch_names=("torch.logdet",), dtypes=F64_32,
         family="linear algebra", doc="log det (NaN where det < 0)", special="det ≤ 0: undefined"),
    Func("inv", _math_inv, torch.linalg.inv, torch_names=("torch.linalg.inv",), dtypes=F64_32,
         family="linear algebra", doc="the inverse (adjugate / det; at most 4×4)", special=SINGULAR),
    Func("solve", _math_solve, torch.linalg.solve, (2, 2), options=(Opt("left", "bool", True),),
         torch_names=("torch.linalg.solve",), dtypes=F64_32, family="linear algebra",
         doc="X with A X = B (B a vector or a matrix)", special=SINGULAR),
    Func("trace", _math_trace, torch.trace, torch_names=("torch.trace",), dtypes=ALL,
         family="linear algebra", doc="sum of the diagonal"),
    Func("matrix_power", _math_matrix_power, torch.linalg.matrix_power,
         options=(Opt("n", "int", None, positional=True),), torch_names=("torch.linalg.matrix_power",),
         dtypes=ALL, family="linear algebra", doc="A^n (n < 0: the inverse's power; float64 and float32 only)",
         special="n < 0 at a singular matrix: undefined"),
    Func("cross", _math_cross, torch.linalg.cross, (2, 2), options=(Opt("dim", "int", -1),),
         torch_names=("torch.linalg.cross",), dtypes=ALL, family="linear algebra", doc="a × b along dim (3 entries)"),
    Func("linalg_norm", _math_linalg_norm, torch.linalg.norm,
         options=(Opt("ord", "number_or_choice", None, ("fro", "nuc"), positional=True, inf=True),
                  Opt("dim", "ints", None, positional=True), Opt("keepdim", "bool", False, positional=True)),
         torch_names=("torch.linalg.norm",), dtypes=ALL, family="linear algebra",
         doc="torch.linalg.norm: a vector norm over one axis, a matrix norm over two",
         special="the zero vector or matrix (ord 2, 'fro'): singular; kinks at zeros and ties (1, inf)"),
    Func("svdvals", _math_svdvals, torch.linalg.svdvals, torch_names=("torch.linalg.svdvals",), dtypes=F64_32,
         family="linear algebra", doc="singular values, largest first (closed form; 2×2 matrices)",
         special="equal singular values (a multiple of an orthogonal matrix): singular; det = 0: a kink of σ₂"),
    Func("vecdot", _math_vecdot, torch.linalg.vecdot, (2, 2), options=(Opt("dim", "int", -1),),
         torch_names=("torch.linalg.vecdot",), dtypes=ALL, family="linear algebra", doc="Σ x·y along dim"),
    Func("diagonal", _math_diagonal, torch.linalg.diagonal,
         options=(Opt("offset", "int", 0), Opt("dim1", "int", -2), Opt("dim2", "int", -1)),
         torch_names=("torch.linalg.diagonal",), dtypes=ALL, family="linear algebra",
         doc="the diagonal (offset) of the matrices over dim1, dim2, as the last axis"),
    Func("vander", _math_vander, torch.linalg.vander, options=(Opt("N", "int", None),),
         torch_names=("torch.linalg.vander",), dtypes=F64_32, family="linear algebra",
         doc="columns x⁰, x¹, …, x^(N−1) (N: the length of x)"),
    Func("linear", _math_linear, F.linear, (2, 3), torch_names=("torch.nn.functional.linear",), dtypes=ALL,
         family="layers", doc="x Wᵀ + b"),
    Func("layer_norm", _math_layer_norm, _torch_layer_norm,
         options=(Opt("normalized_shape", "ints", None, positional=True),
                  Opt("weight", "tensor", None, positional=True), Opt("bias", "tensor", None, positional=True),
                  Opt("eps", "number", 1e-5, low=0, positional=True)),
         torch_names=("torch.nn.functional.layer_norm",), dtypes=ALL, family="layers",
         doc="(x − mean)/sqrt(var + eps)·w + b over the trailing normalized_shape (biased var)",
         special="all entries equal: the result is 0 and its derivative depends on eps"),
    Func("group_norm", _math_group_norm, _torch_group_norm,
         options=(Opt("num_groups", "int", None, positional=True),
                  Opt("weight", "tensor", None, positional=True), Opt("bias", "tensor", None, positional=True),
                  Opt("eps", "number", 1e-5, low=0, positional=True)),
         torch_names=("torch.nn.functional.group_norm",), dtypes=ALL, family="layers",
         doc="layer_norm over each group of channels of (N, C, ...), then w, b per channel"),
    Func("batch_norm", _math_batch_norm, _torch_batch_norm,
         options=(Opt("running_mean", "tensor", None, positional=True),
                  Opt("running_var", "tensor", None, positional=True),
                  Opt("weight", "tensor", None, positional=True), Opt("bias", "tensor", None, positional=True),
                  Opt("training", "bool", False, positional=True),
                  Opt("momentum", "number", 0.1, low=0, positional=True), Opt("eps", "number", 1e-5, low=0, positional=True)),
         torch_names=("torch.nn.functional.batch_norm",), dtypes=ALL, family="layers",
         doc="training: the batch's statistics (biased var) per channel; else the given running statistics"),
    Func("scaled_dot_product_attention", _math_sdpa, F.scaled_dot_product_attention, (3, 3),
         options=(Opt("attn_mask", "tensor", None, positional=True), Opt("dropout_p", "number", 0.0, low=0),
                  Opt("is_causal", "bool", False), Opt("scale", "number", None), Opt("enable_gqa", "bool", False)),
         torch_names=("torch.nn.functional.scaled_dot_product_attention",), dtypes=ALL, family="layers",
         doc="softmax(q kᵀ·scale + mask) v; is_causal masks the future; attn_mask is added (a float mask)"),
    Func("conv1d", lambda x, w, **kw: _conv("conv1d", 1, x, w, **kw), F.conv1d, (2, 2), options=CONV,
         torch_names=("torch.nn.functional.conv1d",), dtypes=ALL, family="layers",
         doc="cross-correlation of (N, C, L) with (C_out, C_in/groups, K); padding a number or 'valid'/'same'"),
    Func("conv2d", lambda x, w, **kw: _conv("conv2d", 2, x, w, **kw), F.conv2d, (2, 2), options=CONV,
         torch_names=("torch.nn.functional.conv2d",), dtypes=ALL, family="layers",
         doc="cross-correlation of (N, C, H, W) with (C_out, C_in/groups, kH, kW)"),
]
