"""The losses of ``torch.nn.functional`` in the case language, each with both meanings.

Every loss takes ``reduction=`` (``'mean'``, ``'sum'``, ``'none'``) and its own options, spelled
as torch spells them. The math meaning follows torch's documented definition, including its
small constants where they change a value (the 1e-12 of cosine_embedding_loss, the eps of
pairwise_distance); the torch meaning calls torch's own kernel. Class indices and ±1 labels
are whole numbers: give them as constants (a case's small whole numbers enter the math
exactly), and the torch meaning passes them as torch wants them (``long`` for indices).

``mse sse cross_entropy(logits, target)`` keep their meaning from the case-file contract.
``ctc_loss`` is not in: see :data:`NOT_IN`.

Imported by :mod:`diffcheck.language.library`, which adds :data:`ROWS` to its table.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import sympy as sp
import torch
import torch.nn.functional as F

from ..errors import ExpressionError
from .rows import Arr, Func, Opt, exact_exp, log_softmax_of, need_ndim, arr
from .reductions import reduce

ALL = ("float64", "float32", "float16", "bfloat16")
F64_32 = ("float64", "float32")
BACKWARD_ONLY = ("reverse", "backward")  # torch has no forward-mode formula

#: losses of torch.nn.functional left out, with the reason
NOT_IN = {
    "ctc_loss": "a sum over every alignment of the target to the input (a dynamic program whose "
                "exact expression grows exponentially with the lengths); its inputs are log-"
                "probabilities over time with integer lengths, which the case language has no "
                "way to state",
}


# --- shared helpers ---------------------------------------------------------------------

def ew(fn: Callable[..., sp.Expr], *arrays: Arr) -> Arr:
    """``fn`` applied entry by entry, broadcasting its arguments as torch does."""
    return arr(np.frompyfunc(fn, len(arrays), 1)(*arrays))


def reduced(per: Arr, reduction: str = "mean") -> Arr:
    """torch's ``reduction=``: every entry's loss, their sum, or their mean."""
    if reduction == "none":
        return per
    total = sp.Add(*per.ravel())
    return arr(total if reduction == "sum" else total / per.size)


def whole(name: str, what: str, a: Arr) -> np.ndarray:
    """The entries of ``a`` as Python ints; a target that is not whole numbers is refused."""
    out = np.empty(a.shape, dtype=object)
    for idx in np.ndindex(a.shape):
        v = a[idx]
        if not (isinstance(v, sp.Number) and v == int(v)):
            raise ExpressionError(f"{name}() {what} must hold whole numbers (give it as a constant)")
        out[idx] = int(v)
    return out


def _long(t: torch.Tensor) -> torch.Tensor:
    return t.round().long()


def _same_shape(name: str, a: Arr, b: Arr) -> None:
    if a.shape != b.shape:
        raise ExpressionError(f"{name}() needs input and target of one shape, got {list(a.shape)} "
                              f"and {list(b.shape)}")


def _logsig(x):
    """log σ(x) = −log(1 + e^−x)."""
    return -sp.log(1 + exact_exp(-x))


def _sum_last(a: Arr) -> Arr:
    return reduce(a, -1, False, lambda xs: sp.Add(*xs), "sum")


REDUCTION = Opt("reduction", "choice", "mean", ("mean", "sum", "none"))
WEIGHT = Opt("weight", "tensor", None)


def _call(fn: Callable, *head: str) -> Callable:
    """The torch meaning ``fn(*tensors, **options)``; ``head`` names arguments to pass as long."""
    def apply(*args, **kw):
        args = [_long(a) if i < len(head) and head[i] == "long" else a for i, a in enumerate(args)]
        return fn(*args, **kw)
    return apply


# --- pointwise regression losses --------------------------------------------------------

def _math_l1(a, b, reduction="mean"):
    return reduced(ew(lambda x, y: sp.Abs(x - y), a, b), reduction)


def _math_mse_loss(a, b, reduction="mean"):
    return reduced(ew(lambda x, y: (x - y) ** 2, a, b), reduction)


def _math_smooth_l1(a, b, reduction="mean", beta=1):
    beta = sp.sympify(beta)
    if beta == 0:
        return _math_l1(a, b, reduction)

    def f(x, y):
        d = x - y
        return sp.Piecewise((d ** 2 / (2 * beta), sp.Abs(d) < beta), (sp.Abs(d) - beta / 2, True))
    return reduced(ew(f, a, b), reduction)


def _math_huber(a, b, reduction="mean", delta=1):
    delta = sp.sympify(delta)
    if delta <= 0:
        raise ExpressionError("huber_loss() delta must be positive")

    def f(x, y):
        d = x - y
        return sp.Piecewise((d ** 2 / 2, sp.Abs(d) <= delta), (delta * (sp.Abs(d) - delta / 2), True))
    return reduced(ew(f, a, b), reduction)


def _math_soft_margin(a, y, reduction="mean"):
    return reduced(ew(lambda x, t: sp.log(1 + exact_exp(-t * x)), a, y), reduction)


def _math_poisson_nll(a, t, log_input=True, full=False, eps=sp.Rational(1, 10 ** 8), reduction="mean"):
    def f(x, y):
        loss = exact_exp(x) - y * x if log_input else x - y * sp.log(x + eps)
        if full:
            if isinstance(y, sp.Number) and y <= 1:
                return loss  # torch adds Stirling's term only where target > 1
            loss += sp.Piecewise((y * sp.log(y) - y + sp.log(2 * sp.pi * y) / 2, y > 1), (0, True))
        return loss
    return reduced(ew(f, a, t), reduction)


def _math_gaussian_nll(a, t, var, full=False, eps=sp.Rational(1, 10 ** 6), reduction="mean"):
    if var.shape != a.shape:
        if var.shape == a.shape[:-1]:
            var = arr(var[..., None])
        elif not (var.shape[:-1] == a.shape[:-1] and var.shape[-1:] == (1,)):
            raise ExpressionError(f"gaussian_nll_loss() var of shape {list(var.shape)} fits neither "
                                  f"input {list(a.shape)} nor its batch shape")

    def f(x, y, v):
        if isinstance(v, sp.Number) and v < eps:
            v = eps  # torch clamps var (without a gradient); a number is clamped here too
        loss = (sp.log(v) + (x - y) ** 2 / v) / 2
        return loss + sp.log(2 * sp.pi) / 2 if full else loss
    return reduced(ew(f, a, t, var), reduction)


def _math_kl_div(a, t, reduction="mean", log_target=False):
    _same_shape("kl_div", a, t)

    def f(x, y):
        if log_target:
            return exact_exp(y) * (y - x)
        if isinstance(y, sp.Number) and y == 0:
            return sp.Integer(0)  # xlogy: 0·log 0 = 0
        # torch: xlogy(t, t) − t·x, and xlogy(0, 0) = 0 (a target held as a symbol may be 0)
        return sp.Piecewise((0, sp.Eq(y, 0)), (y * sp.log(y), True)) - y * x
    per = ew(f, a, t)
    if reduction == "batchmean":
        return arr(sp.Add(*per.ravel()) / (a.shape[0] if a.ndim else 1))
    return reduced(per, reduction)


# --- binary classification --------------------------------------------------------------

def _math_bce(x, t, weight=None, reduction="mean"):
    _same_shape("binary_cross_entropy", x, t)
    per = ew(lambda p, y: -(y * sp.log(p) + (1 - y) * sp.log(1 - p)), x, t)
    if weight is not None:
        per = arr(per * weight)
    return reduced(per, reduction)


def _math_bce_logits(x, t, weight=None, reduction="mean", pos_weight=None):
    _same_shape("binary_cross_entropy_with_logits", x, t)
    pw = pos_weight if pos_weight is not None else arr(sp.Integer(1))
    per = ew(lambda z, y, p: -(p * y * _logsig(z) + (1 - y) * _logsig(-z)), x, t, pw)
    if weight is not None:
        per = arr(per * weight)
    return reduced(per, reduction)


def _math_multilabel_soft_margin(x, t, weight=None, reduction="mean"):
    _same_shape("multilabel_soft_margin_loss", x, t)
    per = ew(lambda z, y: -(y * _logsig(z) + (1 - y) * _logsig(-z)), x, t)
    if weight is not None:
        per = arr(per * weight)
    c = x.shape[-1] if x.ndim else 1
    return reduced(arr(_sum_last(per) / c) if x.ndim else per, reduction)


# --- classification over classes --------------------------------------------------------

def _rows(name: str, x: Arr, target: Arr, probabilities_ok: bool) -> tuple[Arr, Arr, bool, bool]:
    """Input as (N, C), target as (N,) indices or (N, C) probabilities; whether it was batched."""
    need_ndim(name, x, (1, 2))
    batched = x.ndim == 2
    x2 = x if batched else arr(x[None, :])
    if target.shape == x.shape and probabilities_ok:
        return x2, (target if batched else arr(target[None, :])), True, batched
    if target.shape == x.shape[:-1]:
        return x2, (target if batched else arr(np.array([target[()]], dtype=object))), False, batched
    kinds = f"probabilities (shape {list(x.shape)}) nor " if probabilities_ok else ""
    raise ExpressionError(f"{name}() target of shape {list(target.shape)} fits neither input of shape "
                          f"{list(x.shape)} as {kinds}class indices (shape {list(x.shape[:-1])})")


def _class_weights(name: str, weight: Arr | None, c: int) -> list:
    if weight is None:
        return [sp.Integer(1)] * c
    if weight.shape != (c,):
        raise ExpressionError(f"{name}() weight must have one entry per class ({c}), got shape {list(weight.shape)}")
    return list(weight)


def _indices(name: str, target: Arr, c: int, ignore_index: int) -> list[int]:
    out = []
    for k in whole(name, "class-index target", target).ravel():
        if k != ignore_index and not 0 <= k < c:
            raise ExpressionError(f"{name}() class index {k} is out of range for {c} classes")
        out.append(k)
    return out


def _nll_of(name: str, logp: Arr, target: Arr, weight, ignore_index: int, reduction: str, batched: bool):
    """nll_loss on (N, C) log-probabilities with class indices: torch's weighted mean."""
    c = logp.shape[1]
    w = _class_weights(name, weight, c)
    ks = _indices(name, target, c, ignore_index)
    per, den = [], []
    for n, k in enumerate(ks):
        if k == ignore_index:
            per.append(sp.Integer(0))
            continue
        per.append(-w[k] * logp[n, k])
        den.append(w[k])
    if reduction == "none":
        return arr(np.array(per, dtype=object) if batched else per[0])
    if reduction == "sum":
        return arr(sp.Add(*per))
    if not den:
        raise ExpressionError(f"{name}(): every target is ignore_index, so the mean is 0/0 (torch returns nan)")
    return arr(sp.Add(*per) / sp.Add(*den))


def _math_nll(x, target, weight=None, ignore_index=-100, reduction="mean"):
    x2, t2, probs, batched = _rows("nll_loss", x, target, False)
    return _nll_of("nll_loss", x2, t2, weight, ignore_index, reduction, batched)


def _math_cross_entropy(logits, target, weight=None, ignore_index=-100, reduction="mean", label_smoothing=0):
    name = "cross_entropy"
    x2, t2, probs, batched = _rows(name, logits, target, True)
    logp = log_softmax_of(x2, -1)
    n, c = logp.shape
    eps = sp.sympify(label_smoothing)
    if not 0 <= eps <= 1:
        raise ExpressionError(f"{name}() label_smoothing must be in [0, 1], got {label_smoothing}")
    w = _class_weights(name, weight, c)
    if probs:
        t = arr(t2 * (1 - eps) + eps / c) if eps else t2
        per = [-sp.Add(*[w[j] * t[i, j] * logp[i, j] for j in range(c)]) for i in range(n)]
        if reduction == "none":
            return arr(np.array(per, dtype=object) if batched else per[0])
        total = sp.Add(*per)
        return arr(total if reduction == "sum" else total / n)
    nll = _nll_of(name, logp, t2, weight, ignore_index, reduction, batched)
    if not eps:
        return nll
    ks = _indices(name, t2, c, ignore_index)
    smooth = [sp.Integer(0) if k == ignore_index else -sp.Add(*[w[j] * logp[i, j] for j in range(c)])
              for i, k in enumerate(ks)]
    if reduction == "none":
        sm = arr(np.array(smooth, dtype=object) if batched else smooth[0])
    elif reduction == "sum":
        sm = arr(sp.Add(*smooth))
    else:
        sm = arr(sp.Add(*smooth) / sp.Add(*[w[k] for k in ks if k != ignore_index]))
    return arr((1 - eps) * nll + sm * (eps / c))


def _math_multi_margin(x, target, p=1, margin=1, weight=None, reduction="mean"):
    name = "multi_margin_loss"
    if p not in (1, 2):
        raise ExpressionError(f"{name}() p must be 1 or 2, got {p}")
    x2, t2, _, batched = _rows(name, x, target, False)
    n, c = x2.shape
    w = _class_weights(name, weight, c)
    ks = _indices(name, t2, c, -10 ** 9)
    per = []
    for i, k in enumerate(ks):
        terms = []
        for j in range(c):
            if j == k:
                continue
            h = sp.Max(0, margin - x2[i, k] + x2[i, j])
            terms.append(w[k] * (h if p == 1 else h ** 2))
        per.append(sp.Add(*terms) / c)
    return reduced(arr(np.array(per, dtype=object) if batched else per[0]), reduction)


def _math_multilabel_margin(x, target, reduction="mean"):
    name = "multilabel_margin_loss"
    need_ndim(name, x, (1, 2))
    _same_shape(name, x, target)
    x2 = x if x.ndim == 2 else arr(x[None, :])
    t2 = whole(name, "target", target if target.ndim == 2 else arr(target[None, :]))
    n, c = x2.shape
    per = []
    for i in range(n):
        labels = []
        for k in t2[i]:
            if k < 0:
                break
            if k >= c:
                raise ExpressionError(f"{name}() class index {k} is out of range for {c} classes")
            labels.append(k)
        others = [j for j in range(c) if j not in labels]
        per.append(sp.Add(*[sp.Max(0, 1 - (x2[i, k] - x2[i, j])) for k in labels for j in others]) / c)
    return reduced(arr(np.array(per, dtype=object) if x.ndim == 2 else per[0]), reduction)


# --- ranking, embedding and distances ---------------------------------------------------

def _math_margin_ranking(a, b, y, margin=0, reduction="mean"):
    return reduced(ew(lambda u, v, t: sp.Max(0, -t * (u - v) + margin), a, b, y), reduction)


def _math_hinge_embedding(x, y, margin=1, reduction="mean"):
    labels = arr(whole("hinge_embedding_loss", "target", y))

    def f(v, t):  # as torch computes it: both terms where the label is neither 1 nor −1
        return (sp.Max(0, margin - v) if t != 1 else 0) + (v if t != -1 else 0)
    return reduced(ew(f, x, labels), reduction)


def _p_norm_row(xs: list, p) -> sp.Expr:
    if p == float("inf"):
        return sp.Max(*[sp.Abs(v) for v in xs])
    p = sp.nsimplify(p)
    if p == 2:
        return sp.sqrt(sp.Add(*[v ** 2 for v in xs]))
    if p == 1:
        return sp.Add(*[sp.Abs(v) for v in xs])
    if p.is_even:
        return sp.Add(*[v ** p for v in xs]) ** (1 / p)
    return sp.Add(*[sp.Abs(v) ** p for v in xs]) ** (1 / p)


def _math_pairwise_distance(a, b, p=2, eps=sp.Rational(1, 10 ** 6), keepdim=False):
    if p <= 0:
        raise ExpressionError("pairwise_distance() p must be positive here")
    d = arr(a - b + eps)
    if d.ndim == 0:
        return arr(_p_norm_row([d[()]], p))
    return reduce(d, -1, keepdim, lambda xs: _p_norm_row(xs, p), "pairwise_distance")


def _math_cosine_similarity(a, b, dim=1, eps=sp.Rational(1, 10 ** 8)):
    shape = np.broadcast_shapes(a.shape, b.shape)
    if not shape:
        raise ExpressionError("cosine_similarity() needs vectors")
    a, b = np.broadcast_to(a, shape), np.broadcast_to(b, shape)
    dot = reduce(arr(a * b), dim, False, lambda xs: sp.Add(*xs), "cosine_similarity")
    na = reduce(arr(a), dim, False, lambda xs: sp.sqrt(sp.Add(*[v ** 2 for v in xs])), "cosine_similarity")
    nb = reduce(arr(b), dim, False, lambda xs: sp.sqrt(sp.Add(*[v ** 2 for v in xs])), "cosine_similarity")
    return arr(dot / (na * nb))


def _math_cosine_embedding(a, b, y, margin=0, reduction="mean"):
    need_ndim("cosine_embedding_loss", a, (1, 2))
    eps = sp.Rational(1, 10 ** 12)  # torch's EPSILON, added to each squared norm
    sq = lambda u: reduce(arr(u), -1, False, lambda xs: sp.Add(*xs), "cosine_embedding_loss")
    cos = arr(sq(a * b) / ew(lambda s, t: sp.sqrt(s * t), arr(sq(a * a) + eps), arr(sq(b * b) + eps)))
    labels = whole("cosine_embedding_loss", "target", y)
    per = ew(lambda c, t: (1 - c if t == 1 else 0) + (sp.Max(0, c - margin) if t == -1 else 0), cos, arr(labels))
    return reduced(per, reduction)


def _math_triplet(a, pos, neg, margin=1, p=2, eps=sp.Rational(1, 10 ** 6), swap=False, reduction="mean"):
    d_pos = _math_pairwise_distance(a, pos, p, eps)
    d_neg = _math_pairwise_distance(a, neg, p, eps)
    if swap:
        d_neg = ew(lambda u, v: sp.Min(u, v), d_neg, _math_pairwise_distance(pos, neg, p, eps))
    return reduced(ew(lambda u, v: sp.Max(0, margin + u - v), d_pos, d_neg), reduction)


def _math_triplet_distance(a, pos, neg, margin=1, swap=False, reduction="mean"):
    return _math_triplet(a, pos, neg, margin, 2, sp.Rational(1, 10 ** 6), swap, reduction)


# --- the contract's own spellings: mse, sse, cross_entropy(logits, target) --------------

def _math_mse(a, b):
    return _math_mse_loss(a, b, "mean")


def _math_sse(a, b):
    return _math_mse_loss(a, b, "sum")


# --- torch meanings that are more than one call -----------------------------------------

def _torch_cross_entropy(logits, target, **kw):
    if target.shape == logits.shape:
        return F.cross_entropy(logits, target, **kw)
    return F.cross_entropy(logits, _long(target), **kw)


def _torch_kl_div(x, t, **kw):
    import warnings
    with warnings.catch_warnings():  # torch's note that 'mean' is not 'batchmean': the case chose it
        warnings.filterwarnings("ignore", message="reduction: 'mean' divides", category=UserWarning)
        return F.kl_div(x, t, **kw)


def _torch_hinge(x, y, **kw):
    return F.hinge_embedding_loss(x, y, **kw)


def _torch_triplet_distance(a, p, n, **kw):
    return F.triplet_margin_with_distance_loss(a, p, n, **kw)


# --- the rows ----------------------------------------------------------------------------

MARGIN0 = Opt("margin", "number", 0)
MARGIN1 = Opt("margin", "number", 1.0)
IGNORE = Opt("ignore_index", "int", -100)
EPS6 = Opt("eps", "number", 1e-6, low=0)
KINK_AT_TARGET = "input = target: a kink (|d|)"

ROWS: list[Func] = [
    Func("mse", _math_mse, F.mse_loss, (2, 2), doc="mean((a-b)^2)", torch_names=("torch.nn.functional.mse_loss",),
         dtypes=ALL, family="losses"),
    Func("sse", _math_sse, lambda a, b: F.mse_loss(a, b, reduction="sum"), (2, 2), doc="sum((a-b)^2)",
         torch_names=("torch.nn.functional.mse_loss",), dtypes=ALL, family="losses"),
    Func("cross_entropy", _math_cross_entropy, _torch_cross_entropy, (2, 2),
         options=(WEIGHT, IGNORE, REDUCTION, Opt("label_smoothing", "number", 0.0, low=0)),
         torch_names=("torch.nn.functional.cross_entropy",), dtypes=ALL, family="losses",
         doc="−Σ w·t·log_softmax(x) over classes; target: class indices (a constant) or probabilities; "
             "the mean divides by the summed weights of the targets not ignored"),
    Func("mse_loss", _math_mse_loss, F.mse_loss, (2, 2), options=(REDUCTION,),
         torch_names=("torch.nn.functional.mse_loss",), dtypes=ALL, family="losses", doc="(x−y)²"),
    Func("l1_loss", _math_l1, F.l1_loss, (2, 2), options=(REDUCTION,), torch_names=("torch.nn.functional.l1_loss",),
         dtypes=ALL, family="losses", doc="|x−y|", special=KINK_AT_TARGET),
    Func("smooth_l1_loss", _math_smooth_l1, F.smooth_l1_loss, (2, 2),
         options=(REDUCTION, Opt("beta", "number", 1.0, low=0)),
         torch_names=("torch.nn.functional.smooth_l1_loss",), dtypes=ALL, family="losses",
         doc="d²/(2β) where |d| < β, else |d| − β/2 (β = 0: |d|)",
         special="|d| = β: the second derivative jumps; β = 0: a kink at d = 0"),
    Func("huber_loss", _math_huber, F.huber_loss, (2, 2), options=(REDUCTION, Opt("delta", "number", 1.0)),
         torch_names=("torch.nn.functional.huber_loss",), dtypes=ALL, family="losses",
         doc="d²/2 where |d| ≤ δ, else δ(|d| − δ/2)", special="|d| = δ: the second derivative jumps"),
    Func("binary_cross_entropy", _math_bce, F.binary_cross_entropy, (2, 2), options=(WEIGHT, REDUCTION),
         torch_names=("torch.nn.functional.binary_cross_entropy",), dtypes=ALL, family="losses",
         doc="−w(y log x + (1−y) log(1−x)), x in (0, 1)",
         special="x = 0 or 1: torch clamps the log at −100 and the derivative's x(1−x) at 1e-12"),
    Func("binary_cross_entropy_with_logits", _math_bce_logits, F.binary_cross_entropy_with_logits, (2, 2),
         options=(WEIGHT, REDUCTION, Opt("pos_weight", "tensor", None)),
         torch_names=("torch.nn.functional.binary_cross_entropy_with_logits",), dtypes=ALL, family="losses",
         doc="−w(p·y log σ(x) + (1−y) log(1−σ(x))), p = pos_weight along the last dim"),
    Func("nll_loss", _math_nll, _call(F.nll_loss, "", "long"), (2, 2), options=(WEIGHT, IGNORE, REDUCTION),
         torch_names=("torch.nn.functional.nll_loss",), dtypes=ALL, family="losses",
         doc="−w[y]·x[y] (x: log-probabilities, y: class indices); the mean divides by Σw[y]"),
    Func("kl_div", _math_kl_div, _torch_kl_div, (2, 2),
         options=(Opt("reduction", "choice", "mean", ("mean", "batchmean", "sum", "none")),
                  Opt("log_target", "bool", False)),
         torch_names=("torch.nn.functional.kl_div",), dtypes=ALL, family="losses",
         doc="t(log t − x) (x: log-probabilities), or e^t(t − x) with log_target",
         special="t = 0: the term is 0 (xlogy); its derivative in t is singular there"),
    Func("poisson_nll_loss", _math_poisson_nll, F.poisson_nll_loss, (2, 2),
         options=(Opt("log_input", "bool", True), Opt("full", "bool", False), Opt("eps", "number", 1e-8, low=0),
                  REDUCTION),
         torch_names=("torch.nn.functional.poisson_nll_loss",), dtypes=ALL, family="losses",
         doc="e^x − t·x (log_input), else x − t·log(x + eps); full adds Stirling's term where t > 1"),
    Func("gaussian_nll_loss", _math_gaussian_nll, F.gaussian_nll_loss, (3, 3),
         options=(Opt("full", "bool", False), EPS6, REDUCTION),
         torch_names=("torch.nn.functional.gaussian_nll_loss",), dtypes=ALL, family="losses",
         doc="(log v + (x−t)²/v)/2 (+ log(2π)/2 with full); var of the input's shape or its batch shape",
         special="var < eps: torch clamps var to eps without a gradient"),
    Func("soft_margin_loss", _math_soft_margin, F.soft_margin_loss, (2, 2), options=(REDUCTION,),
         torch_names=("torch.nn.functional.soft_margin_loss",), dtypes=ALL, family="losses",
         doc="log(1 + e^(−y·x))"),
    Func("multilabel_soft_margin_loss", _math_multilabel_soft_margin, F.multilabel_soft_margin_loss, (2, 2),
         options=(WEIGHT, REDUCTION), torch_names=("torch.nn.functional.multilabel_soft_margin_loss",),
         dtypes=ALL, family="losses",
         doc="−mean over classes of w(y log σ(x) + (1−y) log σ(−x))"),
    Func("multi_margin_loss", _math_multi_margin, _call(F.multi_margin_loss, "", "long"), (2, 2),
         options=(Opt("p", "int", 1), MARGIN1, WEIGHT, REDUCTION),
         torch_names=("torch.nn.functional.multi_margin_loss",), dtypes=F64_32, modes=BACKWARD_ONLY,
         family="losses",
         doc="Σ_{i≠y} w[y]·max(0, margin − x[y] + x[i])^p / C",
         special="margin − x[y] + x[i] = 0: a kink"),
    Func("multilabel_margin_loss", _math_multilabel_margin, _call(F.multilabel_margin_loss, "", "long"), (2, 2),
         options=(REDUCTION,), torch_names=("torch.nn.functional.multilabel_margin_loss",), dtypes=F64_32,
         modes=BACKWARD_ONLY,
         family="losses", doc="Σ_{j∈labels} Σ_{i∉labels} max(0, 1 − (x[j] − x[i])) / C; labels end at the first −1",
         special="1 − (x[j] − x[i]) = 0: a kink"),
    Func("margin_ranking_loss", _math_margin_ranking, F.margin_ranking_loss, (3, 3), options=(MARGIN0, REDUCTION),
         torch_names=("torch.nn.functional.margin_ranking_loss",), dtypes=ALL, family="losses",
         doc="max(0, −y(x1 − x2) + margin)", special="−y(x1 − x2) + margin = 0: a kink"),
    Func("hinge_embedding_loss", _math_hinge_embedding, _torch_hinge, (2, 2), options=(MARGIN1, REDUCTION),
         torch_names=("torch.nn.functional.hinge_embedding_loss",), dtypes=ALL, family="losses",
         doc="x where y = 1, max(0, margin − x) where y = −1 (y: a constant of ±1)",
         special="x = margin where y = −1: a kink"),
    Func("cosine_embedding_loss", _math_cosine_embedding, F.cosine_embedding_loss, (3, 3),
         options=(MARGIN0, REDUCTION), torch_names=("torch.nn.functional.cosine_embedding_loss",),
         dtypes=ALL, family="losses",
         doc="1 − cos(x1, x2) where y = 1, max(0, cos − margin) where y = −1 (1e-12 added to each squared norm)",
         special="cos = margin where y = −1: a kink; a zero vector: torch's 1e-12 keeps it finite"),
    Func("triplet_margin_loss", _math_triplet, F.triplet_margin_loss, (3, 3),
         options=(MARGIN1, Opt("p", "number", 2.0, low=0), EPS6, Opt("swap", "bool", False), REDUCTION),
         torch_names=("torch.nn.functional.triplet_margin_loss",), dtypes=ALL, family="losses",
         doc="max(0, d(a, p) − d(a, n) + margin), d = pairwise_distance",
         special="d(a, p) − d(a, n) + margin = 0: a kink; swap: d(a, n) = d(p, n) a kink"),
    Func("triplet_margin_with_distance_loss", _math_triplet_distance, _torch_triplet_distance, (3, 3),
         options=(MARGIN1, Opt("swap", "bool", False), REDUCTION),
         torch_names=("torch.nn.functional.triplet_margin_with_distance_loss",), dtypes=ALL, family="losses",
         doc="triplet_margin_loss with the default distance (pairwise_distance); a distance_function "
             "is code, which a case file cannot name"),
    Func("pairwise_distance", _math_pairwise_distance, F.pairwise_distance, (2, 2),
         options=(Opt("p", "number", 2.0, inf=True), EPS6, Opt("keepdim", "bool", False)),
         torch_names=("torch.nn.functional.pairwise_distance",), dtypes=ALL, family="distances",
         doc="‖x1 − x2 + eps‖_p along the last dim", special="x1 − x2 = −eps: the p-norm's singular point"),
    Func("cosine_similarity", _math_cosine_similarity, F.cosine_similarity, (2, 2),
         options=(Opt("dim", "int", 1), Opt("eps", "number", 1e-8, low=0)),
         torch_names=("torch.nn.functional.cosine_similarity",), dtypes=ALL, family="distances",
         doc="x1·x2 / (‖x1‖ ‖x2‖) along dim", special="a norm below eps: torch clamps it to eps (no gradient)"),
]
