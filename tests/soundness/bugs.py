"""Real, filed PyTorch autograd bugs, re-created, each with its correct control.

Each bug is re-created faithfully, as the issue reports it: either as a small custom
``torch.autograd.Function`` carrying the buggy backward (or jvp) formula of the torch
version the issue was filed against, or, where torch 2.13 still has the bug, as the torch
code of the issue itself (a thin wrapper, so that a case file can call it). Each function's
docstring cites the issue: ``pytorch/pytorch#NUMBER "title"``.

Every bug has a control: the same function with the fixed formula (the fix that landed in
torch, or the textbook one), or torch's own now-correct op. The case files next to this
module (``bugs.yaml``, ``controls.yaml``) state the exact mathematics in ``expr:`` and call
these functions through ``imports:``; ``tests/test_soundness_corpus.py`` asserts that every
bug fails and every control passes with default settings.

The formulas are written from the issues' descriptions; no torch source is copied.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

Function = torch.autograd.Function


# --- helpers ---------------------------------------------------------------------------

def _unary(forward, backward, name):
    """A new-style Function (setup_context, vmap rule) of one tensor, no jvp."""

    class _Fn(Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(x):
            return forward(x)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0], output)

        @staticmethod
        def backward(ctx, g):
            x, out = ctx.saved_tensors
            return backward(g, x, out)

    _Fn.__name__ = _Fn.__qualname__ = name
    return _Fn.apply


def _binary(forward, backward, name):
    """A new-style Function of two tensors, no jvp."""

    class _Fn(Function):
        generate_vmap_rule = True

        @staticmethod
        def forward(a, b):
            return forward(a, b)

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0], inputs[1], output)

        @staticmethod
        def backward(ctx, g):
            a, b, out = ctx.saved_tensors
            return backward(g, a, b, out)

    _Fn.__name__ = _Fn.__qualname__ = name
    return _Fn.apply


def _scaled_norm(v):
    """(‖v‖, v/‖v‖) computed with v scaled by max|v| first, so that squares never underflow
    or overflow; the direction is 0 where v = 0 (the minimum-norm subgradient)."""
    scale = v.abs().amax()
    zero = scale == 0
    u = v / torch.where(zero, torch.ones_like(scale), scale)
    length = torch.sqrt((u * u).sum())
    direction = torch.where(zero, torch.zeros_like(u), u / torch.where(zero, torch.ones_like(length), length))
    return scale * length, direction


def _safe_div(num, den):
    """num / den where den != 0, else 0, without a NaN in either branch (double where)."""
    nonzero = den != 0
    return torch.where(nonzero, num / torch.where(nonzero, den, torch.ones_like(den)), torch.zeros_like(num))


# --- 1. pytorch/pytorch#2421 "Gradient of zero norm is nan" -----------------------------

_norm_bug = _unary(lambda x: torch.sqrt((x * x).sum()),
                   lambda g, x, out: g * x / out, "NormNaNAtZero")
_norm_fixed = _unary(lambda x: _scaled_norm(x)[0], lambda g, x, out: g * _scaled_norm(x)[1], "NormFixed")


def norm_bug(x):
    """pytorch/pytorch#2421 "Gradient of zero norm is nan": backward g·x/‖x‖ is 0/0 at x = 0,
    where 0 is a valid subgradient."""
    return _norm_bug(x)


def norm_fixed(x):
    """The fix: the direction is 0 where the norm is 0 (subgradient 0); computed scaled, so
    that tiny inputs do not underflow to a zero norm."""
    return _norm_fixed(x)


# --- 2. pytorch/pytorch#37154 "torch.cdist produces nan gradients in Pytorch 1.5, but not
#        Pytorch 1.4" -------------------------------------------------------------------

def _dist(x, y):
    return torch.sqrt(((x - y) ** 2).sum())


_cdist_bug = _binary(_dist, lambda g, x, y, d: (g * (x - y) / d, -g * (x - y) / d), "CdistNaN")
_cdist_fixed = _binary(lambda x, y: _scaled_norm(x - y)[0],
                       lambda g, x, y, d: (g * _scaled_norm(x - y)[1], -g * _scaled_norm(x - y)[1]), "CdistFixed")


def cdist_bug(x, y):
    """pytorch/pytorch#37154 "torch.cdist produces nan gradients in Pytorch 1.5, but not
    Pytorch 1.4": the euclidean distance's backward divides by the distance, NaN when two
    points coincide."""
    return _cdist_bug(x, y)


def cdist_fixed(x, y):
    """The fix: zero gradient where the distance is zero."""
    return _cdist_fixed(x, y)


# --- 3. pytorch/pytorch#80770 "`xlogy` returns wrong gradient when `input` is 0" --------

_xlogy_bug = _binary(torch.xlogy, lambda g, x, y, out: (g * torch.xlogy((x != 0).to(x.dtype), y), g * x / y),
                     "XlogyMasked")
_xlogy_fixed = _binary(torch.xlogy, lambda g, x, y, out: (g * torch.log(y), g * x / y), "XlogyFixed")


def xlogy_bug(x, y):
    """pytorch/pytorch#80770 "`xlogy` returns wrong gradient when `input` is 0": the
    derivative in x was ``grad * xlogy(x != 0, y)``, 0 at x = 0 instead of log(y)."""
    return _xlogy_bug(x, y)


def xlogy_fixed(x, y):
    """The fix (pytorch#82713): d/dx = log(y) everywhere y > 0."""
    return _xlogy_fixed(x, y)


# --- 4. pytorch/pytorch#773 "Gradient formula for prod can't handle 0 inputs" -----------

def _prod_others(x):
    """∏_{j≠i} x_j for every i, without dividing (differentiable)."""
    n = x.shape[0]
    return torch.stack([torch.prod(torch.cat([x[:i], x[i + 1:]])) for i in range(n)])


_prod_bug = _unary(torch.prod, lambda g, x, out: g * out / x, "ProdDivides")
_prod_fixed = _unary(torch.prod, lambda g, x, out: g * _prod_others(x), "ProdFixed")


def prod_bug(x):
    """pytorch/pytorch#773 "Gradient formula for prod can't handle 0 inputs": backward
    ``grad * prod / x`` is 0/0 (NaN) where an input is 0."""
    return _prod_bug(x)


def prod_fixed(x):
    """The fix: the product of the other entries, no division."""
    return _prod_fixed(x)


# --- 5. pytorch/pytorch#106789 "Fix prod double backward when there are 2+ zeros" -------

class _ProdTwoZeros(Function):
    """prod whose backward, with two or more zeros, returns a constant zero that does not
    require grad: the double backward is then 0 (a value branch: checked point by point)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.prod(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        if int((x == 0).sum()) >= 2:
            return torch.zeros_like(x)  # "the gradient is all zeros": detached from the graph
        return g * _prod_others(x)


def prod_double_backward_bug(x):
    """pytorch/pytorch#106789 "Fix prod double backward when there are 2+ zeros": with two
    zeros the gradient is 0 but its derivative is not; torch's gradient did not require grad,
    so the Hessian came out 0."""
    return _ProdTwoZeros.apply(x)


def prod_double_backward_fixed(x):
    """The fix (pytorch#113969): compute the gradient with a graph even when it is all zeros."""
    return _prod_fixed(x)


# --- 6. pytorch/pytorch#56760 "Derivative of sinc(x) at x=0 returns NaN, should be 0" ---

def _sinc_derivative(x):
    px = math.pi * x
    return (px * torch.cos(px) - torch.sin(px)) / (math.pi * x * x)


_sinc_bug = _unary(torch.sinc, lambda g, x, out: g * _sinc_derivative(x), "SincNaN")
# torch's sinc_backward (FunctionsManual.cpp) masks where π·x·x is 0, not where x is: for
# 0 < |x| < 1e-154 the square underflows and a mask on x == 0 still divides 0 by 0 (NaN;
# the exact derivative there is about -3.3·x, found by `diffcheck run --search`).
_sinc_fixed = _unary(torch.sinc, lambda g, x, out: g * torch.where(
    math.pi * x * x == 0, torch.zeros_like(x),
    _sinc_derivative(torch.where(math.pi * x * x == 0, torch.ones_like(x), x))), "SincFixed")


def sinc_bug(x):
    """pytorch/pytorch#56760 "Derivative of sinc(x) at x=0 returns NaN, should be 0" (also
    #53989 "grad of sinc explodes at 0"): (πx·cos πx − sin πx)/(πx²) is 0/0 at 0."""
    return _sinc_bug(x)


def sinc_fixed(x):
    """The fix (pytorch#56763) as torch has it now: 0 where πx² is 0 (x = 0, or x so small
    that its square underflows)."""
    return _sinc_fixed(x)


# --- 7. pytorch/pytorch#196703 "torch.sinc produces NaN in the second derivative at its
#        removable singularity" (torch 2.13 still has it: the torch code itself) ----------

def torch_sinc(x):
    """pytorch/pytorch#196703 "torch.sinc produces NaN in the second derivative at its
    removable singularity": torch.sinc itself; sinc''(0) = −π²/3, torch gives NaN in reverse
    mode (and 0 in forward-over-forward)."""
    return torch.sinc(x)


def sinc_taylor(x):
    """A correct sinc in torch ops: a Taylor branch at 0 (double where), so every derivative
    at 0 is the limit."""
    px = math.pi * x
    small = x.abs() < 1e-4
    safe = torch.where(small, torch.ones_like(px), px)
    return torch.where(small, 1 - px * px / 6 + px ** 4 / 120, torch.sin(safe) / safe)


# --- 8. pytorch/pytorch#27134 "Gradient for d/db a**b should be 0 at a=0 instead of NaN" -

_pow_bug = _binary(torch.pow, lambda g, a, b, out: (g * b * a ** (b - 1), g * out * torch.log(a)), "PowLogA")
_pow_fixed = _binary(torch.pow, lambda g, a, b, out: (
    g * b * a ** (b - 1), g * torch.where(a == 0, torch.zeros_like(out), out * torch.log(torch.where(
        a == 0, torch.ones_like(a), a)))), "PowFixed")


def pow_exponent_bug(a, b):
    """pytorch/pytorch#27134 "Gradient for d/db a**b should be 0 at a=0 instead of NaN":
    d/db = a**b·log(a) is 0·(−inf) at a = 0."""
    return _pow_bug(a, b)


def pow_exponent_fixed(a, b):
    """The fix: 0 where a = 0 (the limit for b > 0)."""
    return _pow_fixed(a, b)


# --- 9. pytorch/pytorch#8940 "Issue in a particular case in backpropagation" (x**0) ----

_pow0_bug = _unary(lambda x: x ** 0, lambda g, x, out: g * 0 * x ** (-1.0), "PowZeroExponent")
_pow0_fixed = _unary(lambda x: x ** 0, lambda g, x, out: torch.zeros_like(g * x), "PowZeroFixed")


def pow_zero_exponent_bug(x):
    """pytorch/pytorch#8940 "Issue in a particular case in backpropagation": (x**n)' = n·x**(n−1)
    with n = 0 is 0·(1/0) = NaN at x = 0; the derivative of the constant 1 is 0."""
    return _pow0_bug(x)


def pow_zero_exponent_fixed(x):
    """The fix: n = 0 gives a zero gradient."""
    return _pow0_fixed(x)


# --- 10. pytorch/pytorch#4320 "torch.std NaN gradient" --------------------------------

def _std(x):
    return torch.sqrt(((x - x.mean()) ** 2).sum() / (x.shape[0] - 1))


_std_bug = _unary(_std, lambda g, x, out: g * (x - x.mean()) / ((x.shape[0] - 1) * out), "StdNaN")
_std_fixed = _unary(lambda x: _scaled_norm(x - x.mean())[0] / math.sqrt(x.shape[0] - 1),
                    lambda g, x, out: g * _scaled_norm(x - x.mean())[1] / math.sqrt(x.shape[0] - 1), "StdFixed")


def std_bug(x):
    """pytorch/pytorch#4320 "torch.std NaN gradient": backward (x − mean)/((n−1)·std) is
    0/0 for a constant input, where 0 is a valid subgradient."""
    return _std_bug(x)


def std_fixed(x):
    """The fix (pytorch#45468): zero gradient where std is 0 (computed scaled, as the norm)."""
    return _std_fixed(x)


# --- 11. pytorch/pytorch#76185 "Ensure custom Function are correct in double backward
#         setting" ----------------------------------------------------------------------

class _MyFn(Function):
    """The issue's own Function: an intermediate saved on ctx (not through
    save_for_backward) takes no part in the double backward."""

    @staticmethod
    def forward(ctx, inp):
        temp = inp * 2
        ctx.temp = temp
        ctx.inp = inp
        return temp * 3

    @staticmethod
    def backward(ctx, g):
        return g * torch.full_like(g, 3) * ctx.temp / ctx.inp


class _MyFnFixed(Function):
    @staticmethod
    def forward(ctx, inp):
        return inp * 6

    @staticmethod
    def backward(ctx, g):
        return g * 6


def ctx_intermediate_bug(x):
    """pytorch/pytorch#76185 "Ensure custom Function are correct in double backward setting":
    6x whose backward 3·temp/inp uses ``temp`` saved on ctx; the Hessian comes out −6/x, not 0."""
    return _MyFn.apply(x)


def ctx_intermediate_fixed(x):
    """The same Function with a backward that depends only on what autograd tracks."""
    return _MyFnFixed.apply(x)


# --- 12. pytorch/pytorch#96813 "Incorrect backward for smooth_l1_loss when beta = 0 on
#         GPU" --------------------------------------------------------------------------

def _l1(x, y):
    return (x - y).abs()


_smooth_l1_bug = _binary(_l1, lambda g, x, y, out: (g * torch.clamp((x - y) / 0.0, -1, 1),
                                                    -g * torch.clamp((x - y) / 0.0, -1, 1)), "SmoothL1Beta0")


def smooth_l1_beta0_bug(x, y):
    """pytorch/pytorch#96813 "Incorrect backward for smooth_l1_loss when beta = 0 on GPU":
    the kernel divided by beta = 0: clamp((x−y)/0, −1, 1) is NaN where x = y."""
    return _smooth_l1_bug(x, y)


def smooth_l1_beta0_torch(x, y):
    """torch's own smooth_l1_loss with beta = 0 (L1 loss; fixed by pytorch#97022)."""
    return F.smooth_l1_loss(x, y, beta=0.0, reduction="sum")


# --- 13. pytorch/pytorch#47671 "A problem about elu_backward" -------------------------

ALPHA = -2.0


def _elu(x):
    return torch.where(x > 0, x, ALPHA * torch.expm1(x))


_elu_bug = _unary(_elu, lambda g, x, out: torch.where(out > 0, g, g * (out + ALPHA)), "EluFromOutput")


def elu_negative_alpha_bug(x):
    """pytorch/pytorch#47671 "A problem about elu_backward": the backward was computed from
    the output (out > 0 ? 1 : out + alpha), wrong for alpha < 0 where out > 0 for x < 0."""
    return _elu_bug(x)


def elu_negative_alpha_torch(x):
    """torch's elu with alpha = −2, whose backward uses the input (pytorch#49272)."""
    return F.elu(x, alpha=ALPHA)


# --- 14. pytorch/pytorch#51438 "There is a problem with the calculation result of
#         hardsigmoid_backward" ----------------------------------------------------------

_hardsigmoid_bug = _unary(F.hardsigmoid, lambda g, x, out: torch.where(
    (x > -3) | (x < 3), g / 6, torch.zeros_like(g)), "HardsigmoidOr")


def hardsigmoid_bug(x):
    """pytorch/pytorch#51438 "There is a problem with the calculation result of
    hardsigmoid_backward" (also #51408): the gradient was 1/6 outside (−3, 3) too."""
    return _hardsigmoid_bug(x)


_hardsigmoid_fixed = _unary(F.hardsigmoid, lambda g, x, out: torch.where(
    (x > -3) & (x < 3), g / 6, torch.zeros_like(g)), "HardsigmoidAnd")


def hardsigmoid_fixed(x):
    """The fix (pytorch#51454): 1/6 only inside (−3, 3). (torch's own hardsigmoid is no
    control in float64: its backward returns float32's 1/6, 0.1666666716, 3e-8 off.)"""
    return _hardsigmoid_fixed(x)


# --- 15. pytorch/pytorch#55587 "`Softplus` forward and backward discrepancy" ------------

BETA, THRESHOLD = 3.0, 1.0


def _softplus(x):
    return torch.where(x * BETA > THRESHOLD, x, torch.log1p(torch.exp(BETA * x)) / BETA)


def _softplus_output_backward(g, x, out):
    z = torch.exp(out * BETA)
    return torch.where(out * BETA > THRESHOLD, g, g * (z - 1) / z)


_softplus_bug = _unary(_softplus, _softplus_output_backward, "SoftplusOutputThreshold")


def softplus_threshold_bug(x):
    """pytorch/pytorch#55587 "`Softplus` forward and backward discrepancy" (also #61568
    "There maybe a bug in the backward of softplus"): the backward tested output·beta >
    threshold instead of input·beta, so it returned 1 where the forward is still smooth."""
    return _softplus_bug(x)


def softplus_threshold_torch(x):
    """torch's softplus (fixed by pytorch#56484)."""
    return F.softplus(x, beta=BETA, threshold=THRESHOLD)


# --- 16. pytorch/pytorch#104675 "torch.det does not compute gradients correctly" --------

def torch_det(x):
    """pytorch/pytorch#104675 "torch.det does not compute gradients correctly": torch.det
    itself; at the singular [[0, 1], [0, 1]] the gradient (the adjugate, [[1, 0], [−1, 0]])
    comes out 0 (torch 2.13 still)."""
    return torch.det(x)


def det2_explicit(x):
    """The determinant of a 2×2 matrix as its polynomial, in torch ops."""
    return x[0, 0] * x[1, 1] - x[0, 1] * x[1, 0]


# --- 17. pytorch/pytorch#80761 "`det` will return wrong gradient for `1x1` matrix with 0
#         value." ---------------------------------------------------------------------

class _Det1x1(Function):
    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.det(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output)

    @staticmethod
    def backward(ctx, g):
        x, det = ctx.saved_tensors
        # the old formula: det · A^{-T}, with singular matrices sent to a zero gradient
        singular = det == 0
        safe = torch.where(singular, torch.ones_like(x), x)
        grad = det * torch.linalg.inv(safe).mT
        return g * torch.where(singular, torch.zeros_like(grad), grad)


def det_1x1_bug(x):
    """pytorch/pytorch#80761 "`det` will return wrong gradient for `1x1` matrix with 0 value.":
    the singular branch gave 0; d det([[a]])/da = 1."""
    return _Det1x1.apply(x)


# --- 18–22. nested forward mode (second derivative by forward-over-forward) of torch ops
#            that torch 2.13 still gets wrong: the issues' own functions -------------------

def det_of_t(t):
    """pytorch/pytorch#196696 "torch.det returns an incorrect second derivative under nested
    JVP": det([[t+2, 1], [1, 2t+3]]), whose second derivative is 4."""
    one = torch.ones((), dtype=t.dtype)
    return torch.det(torch.stack((torch.stack((t + 2, one)), torch.stack((one, 2 * t + 3)))))


def cumprod_of_t(t):
    """pytorch/pytorch#196701 "torch.cumprod returns an incorrect nested JVP at a zero
    factor": a weighted sum of cumulative products, a polynomial in t."""
    x = torch.stack((t, t + 1, 2 - t, t - 1, 2 * t + 1, t + 3)).reshape(2, 3)
    w = torch.tensor([[1, 2, 3], [4, 5, 6]], dtype=t.dtype)
    return (torch.cumprod(x, dim=-1) * w).sum()


def layer_norm_of_t(t):
    """pytorch/pytorch#196700 "torch.nn.functional.layer_norm returns an incorrect
    second-order JVP": the output simplifies to −t/√(1+t²)."""
    zero = torch.zeros((), dtype=t.dtype)
    x = torch.stack((t, zero)).reshape(1, 2)
    weight = torch.tensor([1, 2], dtype=t.dtype)
    return F.layer_norm(x, [2], weight=weight, bias=torch.zeros(2, dtype=t.dtype), eps=0.25).sum()


def slogdet_of_t(t):
    """pytorch/pytorch#196697 "torch.linalg.slogdet returns zero instead of a nonzero
    second-order JVP": log|det| = log(3t + 5)."""
    c = torch.tensor([1, 2, 3], dtype=t.dtype)
    a = torch.stack((t + c[1], c[0], c[0], c[2])).reshape(2, 2)
    return torch.linalg.slogdet(a)[1]


def householder_of_t(t):
    """pytorch/pytorch#196698 "torch.linalg.householder_product returns an incorrect nested
    JVP": the column's sum is 1 − 2(1+t)/(1+t²)."""
    c = torch.ones((), dtype=t.dtype)
    a = torch.stack((c, t)).reshape(2, 1)
    tau = (2 / (1 + t * t)).reshape(1)
    return torch.linalg.householder_product(a, tau).sum()


# --- 23. pytorch/pytorch#196704 "torch.logaddexp produces NaN in second-order AD for
#         finite logits" ------------------------------------------------------------------

def logaddexp_of_t(t):
    """pytorch/pytorch#196704 "torch.logaddexp produces NaN in second-order AD for finite
    logits": at t = −800 the second derivative is finite, torch gives NaN."""
    x = torch.stack((t + 2, -2 * t)).reshape(2, 1)
    y = torch.stack((t / 2 - 1, 3 - t, 2 * t + 1)).reshape(1, 3)
    w = torch.tensor([[1, 2, -1], [3, -2, 4]], dtype=t.dtype)
    return (torch.logaddexp(x, y) * w).sum()


def _logaddexp_stable(a, b):
    m = torch.maximum(a, b)
    return m + torch.log1p(torch.exp(-(a - b).abs()))


def logaddexp_stable_of_t(t):
    """The same function with logaddexp written as max + log1p(exp(−|a−b|)): its second
    derivative is finite everywhere."""
    x = torch.stack((t + 2, -2 * t)).reshape(2, 1)
    y = torch.stack((t / 2 - 1, 3 - t, 2 * t + 1)).reshape(1, 3)
    w = torch.tensor([[1, 2, -1], [3, -2, 4]], dtype=t.dtype)
    return (_logaddexp_stable(x, y) * w).sum()


# --- 24. pytorch/pytorch#192408 "torch.exp2 second derivative overflows to inf at 1024.0
#         although the float64 value is finite" --------------------------------------------

TWO_LN2 = 2 * math.log(2.0)


class _Exp2Halved(Function):
    """exp2 whose derivative is 2**(x − 1)·(2 ln 2): 2**1023 does not overflow, and x − 1 is
    exact for x in [2, 2**52]."""

    generate_vmap_rule = True

    @staticmethod
    def forward(x):
        return torch.exp2(x)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0])

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (_Exp2Halved.apply(x - 1) * TWO_LN2)


def torch_exp2(x):
    """pytorch/pytorch#192408 "torch.exp2 second derivative overflows to inf at 1024.0
    although the float64 value is finite": torch.exp2 itself (its derivatives multiply the
    overflowed value 2**1024 by ln 2)."""
    return torch.exp2(x)


def exp2_halved(x):
    """exp2 with derivatives computed as 2**(x − k)·(2 ln 2)**k: no overflow below 2**1024."""
    return _Exp2Halved.apply(x)


# --- 25. pytorch/pytorch#15506 "nan propagates through backward pass even when not
#         accessed" --------------------------------------------------------------------

def log_then_index(a):
    """pytorch/pytorch#15506 "nan propagates through backward pass even when not accessed":
    ``a.log()[-1]``: the unused a[0] = 0 gets 0·(1/0) = NaN, its derivative is 0."""
    return torch.log(a)[3]


def index_then_log(a):
    """The same function, indexing first."""
    return torch.log(a[3])


# --- 26. pytorch/pytorch#26799 "Unrelated element gets nan gradient" -------------------

DIVISOR = (1.0, 0.0, 1.0)


def divide_then_index(w):
    """pytorch/pytorch#26799 "Unrelated element gets nan gradient": ``(w / d)[0]`` with
    d = [1, 0, 1]: w[1] gets 0/0 = NaN, its derivative is 0."""
    d = torch.tensor(DIVISOR, dtype=w.dtype)
    return (w / d)[0]


def index_then_divide(w):
    d = torch.tensor(DIVISOR, dtype=w.dtype)
    return w[0] / d[0]


# --- 27. pytorch/pytorch#4132 "x.grad should be 0 but get NaN after x/0" ----------------

def masked_after_division(x):
    """pytorch/pytorch#4132 "x.grad should be 0 but get NaN after x/0": y = x/div, then
    y[div == 0] = 0; x[0] gets NaN, its derivative is 0."""
    div = torch.tensor([0.0, 1.0], dtype=x.dtype)
    y = x / div
    y = torch.where(div == 0, torch.zeros_like(y), y)  # the y[mask] = 0, out of place
    return y.sum()


def masked_before_division(x):
    div = torch.tensor([0.0, 1.0], dtype=x.dtype)
    safe = torch.where(div == 0, torch.ones_like(div), div)
    return torch.where(div == 0, torch.zeros_like(x), x / safe).sum()


# --- 28. pytorch/pytorch#93998 "Incorrect gradient with atan2 and "late" masking" --------

def _atan2_old_backward(g, y, x, out):
    recip = 1 / (x * x + y * y)  # the formula before pytorch#166787: inf at (0, 0)
    return g * x * recip, g * (-y) * recip


_atan2_old = _binary(torch.atan2, _atan2_old_backward, "Atan2Old")

ATAN2_Y = (2.0, 0.0)


def atan2_late_mask_bug(x):
    """pytorch/pytorch#93998 "Incorrect gradient with atan2 and "late" masking": atan2(y, x)
    then keeping element 0; the masked element at (0, 0) gets 0·inf = NaN (atan2_backward's
    reciprocal of x² + y², fixed by pytorch#166787)."""
    y = torch.tensor(ATAN2_Y, dtype=x.dtype)
    return _atan2_old(y, x)[0]


def atan2_late_mask_torch(x):
    """torch's own atan2, whose backward now masks the zero denominator."""
    y = torch.tensor(ATAN2_Y, dtype=x.dtype)
    return torch.atan2(y, x)[0]


# --- 29. pytorch/pytorch#1620 "[Feature Request] nn.Log (or improvement of torch.log)" --

def log_of_softmax(x):
    """pytorch/pytorch#1620 "[Feature Request] nn.Log (or improvement of torch.log)":
    ``torch.log(softmax(x))`` underflows to log 0 = −inf (and NaN gradients) where
    log_softmax is finite."""
    return torch.log(F.softmax(x, dim=-1))


# --- 30. pytorch/pytorch#196705 "torch.logcumsumexp loses a first-order JVP
#         contribution" -----------------------------------------------------------------

def logcumsumexp_of_t(t):
    """pytorch/pytorch#196705 "torch.logcumsumexp loses a first-order JVP contribution": at
    t = −400 the JVP is −6, the derivative −5."""
    x = torch.stack((t, 1 - t, 2 * t + 3, -t, t + 2, 3 * t - 1)).reshape(2, 3)
    w = torch.tensor([[1, 2, -1], [3, -2, 4]], dtype=t.dtype)
    return (torch.logcumsumexp(x, dim=-1) * w).sum()


# --- composed correct code: controls only ----------------------------------------------

def huber_sum(x):
    return F.huber_loss(x, torch.zeros_like(x), delta=1.0, reduction="sum")


def smooth_l1_sum(x):
    return F.smooth_l1_loss(x, torch.zeros_like(x), beta=0.5, reduction="sum")


def mish_composed(x):
    return x * torch.tanh(F.softplus(x))


def gelu_composed(x):
    return 0.5 * x * (1 + torch.erf(x / math.sqrt(2.0)))


def sigmoid_composed(x):
    return 1 / (1 + torch.exp(-x))


def softplus_composed(x):
    return torch.log1p(torch.exp(x))


def thresholded(x):
    return torch.where(x > 1 / 3, x * x, (2 * x - 1 / 3) / 3)


def cumprod_sum(x):
    return torch.cumprod(x, dim=0).sum()


# --- long sums as a loop adds them (recursive summation: n − 1 roundings in a chain, not
#     torch.sum's pairwise log₂ n), for the conditioning bound of tests/data/cases/tolerance.yaml

def _loop_sum(x):
    s = x[..., 0]
    for i in range(1, x.shape[-1]):
        s = s + x[..., i]
    return s


def loop_mean_squared(x):
    return (_loop_sum(x) / x.shape[-1]) ** 2


def loop_dot_squared(x, w):
    return (_loop_sum(x * w) / x.shape[-1]) ** 2


def loop_norm(x):
    return torch.sqrt(_loop_sum(x * x))


def loop_mean_squared_off(x):
    """A planted bug: the mean off by 1e-3 relative."""
    return (_loop_sum(x) * (1.001 / x.shape[-1])) ** 2


def loop_norm_off(x):
    """A planted bug: the norm off by 2 % (a float16-sized error)."""
    return torch.sqrt(_loop_sum(x * x)) * 1.02


def loop_half_square(x):
    """(Σx)²/2 with the sum taken in a loop: its gradient, Σx at every entry, cancels."""
    return _loop_sum(x) ** 2 / 2
