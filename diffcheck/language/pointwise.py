"""Elementwise functions of the case language, each with its two meanings side by side: the
elementary functions, the differentiable functions of ``torch.special``, the functions of two
arguments (``atan2 hypot logaddexp pow clamp copysign xlogy`` …) and the activations of
``torch.nn.functional`` with their options, spelled as torch spells them.

Each math meaning is the mathematical function itself, with the options' exact values (a
threshold of 0.5 is 1/2); where torch approximates it (``softplus``'s ``threshold``), that is
torch's, not the meaning's (``cases/findings.yaml``). ``special`` names each row's kinks,
poles, removable singularities and thresholds; ``dtypes`` the dtypes torch supports for it on
the CPU (measured: ``python -m diffcheck.language.catalog``). The exact readings of the SymPy
functions the rows produce are rows of :mod:`diffcheck.symbolic.ops`.

Imported by :mod:`diffcheck.language.library`, which adds :data:`ROWS` to its table.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Callable

import numpy as np
import sympy as sp
import torch
import torch.nn.functional as F

from ..errors import ExpressionError
from ..symbolic.ops import torch_fmod, torch_remainder
from .rows import MAX_EXACT_DIGITS, Arr, Func, Opt, exact_exp, softmax_of, pairwise, like_tensor, arr, elementwise, elementwise2

ALL = ("float64", "float32", "float16", "bfloat16")
F64_F32 = ("float64", "float32")


def _sigmoid(x):
    return 1 / (1 + exact_exp(-x))


def _softplus(x):
    return sp.log(1 + exact_exp(x))


def _gelu(x):
    return x * (1 + sp.erf(x / sp.sqrt(2))) / 2


def _silu(x):
    return x / (1 + exact_exp(-x))


def _torch_step(x):
    return torch.heaviside(x, torch.zeros_like(x))



def _number_guard(name: str, *values) -> None:
    """Refuse exact constants whose digits would explode (a power of two constants)."""
    if all(isinstance(v, sp.Basic) and not v.free_symbols for v in values):
        size = sp.Abs(values[-1] * sp.log(sp.Abs(values[0]) + 2, 10)).evalf(5) if len(values) > 1 else 0
        if size.is_finite is False or size > MAX_EXACT_DIGITS:
            raise ExpressionError(f"{name}() of these constants is too large to compute exactly")


def _pow(a, b):
    _number_guard("pow", a, b)
    return a ** b


def _logaddexp(a, b):
    return sp.log(exact_exp(a) + exact_exp(b))


def _logaddexp2(a, b):
    _number_guard("logaddexp2", sp.Integer(2), a)
    _number_guard("logaddexp2", sp.Integer(2), b)
    return sp.log(2 ** a + 2 ** b) / sp.log(2)


def _copysign(a, b):
    return sp.Piecewise((sp.Abs(a), b >= 0), (-sp.Abs(a), True))


def _lgamma(x):
    """log|Γ(x)|, as torch.lgamma (SymPy's loggamma is complex below 0)."""
    # below 0 as log(Γ(x)²)/2 (= log|Γ(x)|): its derivative is ψ(x) with no re()/im() of Γ
    return sp.Piecewise((sp.loggamma(x), x > 0), (sp.log(sp.gamma(x) ** 2) / 2, True))


def _polygamma(n, x):
    if not (isinstance(n, sp.Integer) and n >= 0):
        raise ExpressionError("polygamma(n, x) needs a whole number n >= 0")
    return sp.polygamma(n, x)


def _multigammaln(x, p=None):
    if not isinstance(p, int) or p < 1:
        raise ExpressionError("multigammaln() needs a whole number p >= 1: multigammaln(x, p)")
    return (sp.Rational(p * (p - 1), 4) * sp.log(sp.pi)
            + sp.Add(*[sp.loggamma(x + sp.Rational(1 - j, 2)) for j in range(1, p + 1)]))


def _incomplete_gamma(name: str, kind):
    def fn(a, x):
        if not (isinstance(a, sp.Number) and a > 0):
            raise ExpressionError(f"{name}(a, x) needs a number a > 0 (torch differentiates x only)")
        return kind(a, x) / sp.gamma(a)
    return fn


def _torch_incomplete_gamma(fn):
    return lambda a, x: fn(torch.full_like(x, float(a)), x)


def _ndtr(x):
    return (1 + sp.erf(x / sp.sqrt(2))) / 2


def _logit(x, eps=None):
    if eps is not None:
        x = _clip(x, eps, 1 - eps)
    return sp.log(x / (1 - x))


def _scaled_bessel(nu):
    return lambda x: exact_exp(-sp.Abs(x)) * sp.besseli(nu, x)


def _clip(x, lo=None, hi=None):
    """x clamped to [lo, hi] as one Piecewise (not Min(Max(..))): each end is then a plain
    condition on x, and the derivative a Piecewise of 0 and 1 rather than a product of
    Heavisides with a Max inside (which the kink finder once missed)."""
    if lo is not None and hi is not None and lo > hi:
        return hi + 0 * x  # torch: min(max(x, lo), hi) is hi everywhere
    pieces = []
    if lo is not None:
        pieces.append((lo, x < lo))
    if hi is not None:
        pieces.append((hi, x > hi))
    return sp.Piecewise(*pieces, (x, True))


def _clamp(x, min=None, max=None):
    if min is None and max is None:
        raise ExpressionError("clamp() needs min= or max= (or both)")
    return _clip(x, min, max)


def _gelu_any(x, approximate="none"):
    if approximate == "tanh":
        return x * (1 + sp.tanh(sp.sqrt(2 / sp.pi) * (x + sp.Rational(44715, 10 ** 6) * x ** 3))) / 2
    return _gelu(x)


def _softplus_beta(x, beta=1, threshold=20):
    """(1/β)·log(1 + e^(βx)): the function itself. torch's ``threshold`` (the identity above
    βx > threshold) is torch's approximation, not part of the meaning (cases/findings.yaml)."""
    return sp.log(1 + exact_exp(beta * x)) / beta


def _elu_alpha(x, alpha=1):
    return sp.Piecewise((x, x > 0), (alpha * (exact_exp(x) - 1), True))


def _celu(x, alpha=1):
    if alpha == 0:
        raise ExpressionError("celu() alpha must not be 0")
    return sp.Piecewise((x, x > 0), (alpha * (exact_exp(x / alpha) - 1), True))


# torch's SELU constants, as the doubles its kernel uses (exact rationals of those doubles)
_SELU_ALPHA = sp.Rational(*Fraction(1.6732632423543772848170429916717).as_integer_ratio())
_SELU_SCALE = sp.Rational(*Fraction(1.0507009873554804934193349852946).as_integer_ratio())


def _selu(x):
    return _SELU_SCALE * sp.Piecewise((x, x > 0), (_SELU_ALPHA * (exact_exp(x) - 1), True))


def _leaky(x, negative_slope=sp.Rational(1, 100)):
    return sp.Piecewise((x, x > 0), (negative_slope * x, True))


def _softshrink(x, lambd=sp.S.Half):
    return sp.Piecewise((x - lambd, x > lambd), (x + lambd, x < -lambd), (0, True))


def _hardshrink(x, lambd=sp.S.Half):
    return sp.Piecewise((x, x > lambd), (x, x < -lambd), (0, True))


def _threshold(x, threshold=None, value=None):
    if threshold is None or value is None:
        raise ExpressionError("threshold() needs threshold and value: threshold(x, threshold, value)")
    return sp.Piecewise((x, x > threshold), (value, True))


def _math_glu(a: Arr, dim: int = -1) -> Arr:
    if a.ndim == 0 or a.shape[dim] % 2:
        raise ExpressionError(f"glu() halves dimension {dim}, which must have an even size; got shape {list(a.shape)}")
    first, second = np.split(a, 2, axis=dim)
    return arr(first * elementwise(_sigmoid)(arr(second)))


def _math_prelu(a: Arr, w: Arr) -> Arr:
    if w.ndim > 1 or (w.ndim == 1 and w.size != 1 and (a.ndim < 2 or a.shape[1] != w.size)):
        raise ExpressionError("prelu() weight is one number or one per channel (dimension 1 of the input)")
    if w.ndim == 1 and w.size > 1:
        w = w.reshape((w.size,) + (1,) * (a.ndim - 2))
    elif w.ndim == 1:
        w = arr(w[0])
    return elementwise2(lambda v, s: sp.Piecewise((v, v > 0), (s * v, True)))(a, w)


def _kw_elem(fn: Callable) -> Callable[..., Arr]:
    """An elementwise math meaning with keywords (exact values, the same for every element)."""
    def apply(a: Arr, **kw) -> Arr:
        return arr(np.frompyfunc(lambda v: fn(v, **kw), 1, 1)(a))
    return apply


def _torch_polygamma(n, x):
    return torch.polygamma(int(n), x)


def _torch_rrelu(x, lower=1 / 8, upper=1 / 3):
    return F.rrelu(x, lower, upper, training=False)


def _torch_softmin(x, dim=-1):
    return F.softmin(x, dim=dim)


def _torch_glu(x, dim=-1):
    return F.glu(x, dim=dim)


def _torch_prelu(x, w):
    return F.prelu(x, w.reshape(1) if w.ndim == 0 else w)


def _torch_hypot(a, b):
    return torch.hypot(*torch.broadcast_tensors(a, like_tensor(b, a)))


def _special(points) -> str:
    return points if isinstance(points, str) else ", ".join(points)


def _e(name: str, sym: Callable, tfn: Callable, family: str, torch_name: str, doc: str = "",
       special: tuple[str, ...] = (), options: tuple[Opt, ...] = (), dtypes: tuple[str, ...] = ALL) -> Func:
    """An elementwise row: ``sym`` on SymPy scalars (with the options, exact), ``tfn`` on tensors."""
    math_fn = _kw_elem(sym) if options else elementwise(sym)
    return Func(name, math_fn, tfn, doc=doc or f"{name}(x), elementwise", options=options, family=family,
                torch_names=tuple(torch_name.split()), special=_special(special), dtypes=dtypes)


def _b(name: str, sym: Callable, tfn: Callable, torch_name: str, doc: str, special: tuple[str, ...] = (),
       family: str = "binary") -> Func:
    """A row of two tensor arguments, broadcast elementwise."""
    return Func(name, elementwise2(sym), tfn, (2, 2), doc=doc, family=family, torch_names=tuple(torch_name.split()),
                special=_special(special), dtypes=ALL)


def _elem(name: str, sym: Callable, tfn: Callable, doc: str = "", family: str = "elementary",
          torch_names: tuple[str, ...] = (), special: str = "") -> Func:
    return Func(name, elementwise(sym), tfn, doc=doc or f"{name}(x), elementwise", family=family,
                torch_names=torch_names or (f"torch.{name}",), special=special, dtypes=ALL)


_MOVED = [
    # elementary
    _elem("exp", exact_exp, torch.exp),
    _elem("log", sp.log, torch.log, special="0"),
    _elem("sqrt", sp.sqrt, torch.sqrt, special="0"),
    _elem("abs", sp.Abs, torch.abs, special="0"),
    _elem("sin", sp.sin, torch.sin),
    _elem("cos", sp.cos, torch.cos),
    _elem("tan", sp.tan, torch.tan, special="π/2"),
    _elem("sinh", sp.sinh, torch.sinh),
    _elem("cosh", sp.cosh, torch.cosh),
    _elem("tanh", sp.tanh, torch.tanh, torch_names=("torch.tanh", "torch.nn.functional.tanh")),
    _elem("asinh", sp.asinh, torch.asinh),
    _elem("atan", sp.atan, torch.atan),
    _elem("erf", sp.erf, torch.erf, torch_names=("torch.erf", "torch.special.erf")),
    # activations
    _elem("sigmoid", _sigmoid, torch.sigmoid, "1/(1+e^-x)", "activation",
          ("torch.sigmoid", "torch.nn.functional.sigmoid")),
    _elem("relu", lambda x: sp.Max(0, x), torch.relu, "max(0, x)", "activation",
          ("torch.relu", "torch.nn.functional.relu"), "0"),
    Func("step", elementwise(lambda x: sp.Heaviside(x, 0)), _torch_step, doc="Heaviside step, 0 at 0",
         family="activation", torch_names=("torch.heaviside",), special="0", dtypes=()),
    _e("softplus", _softplus_beta, F.softplus, "activation", "torch.nn.functional.softplus",
       "log(1+e^(βx))/β (torch: x where βx > threshold)", ("threshold/beta",),
       (Opt("beta", "number", 1.0, positional=True), Opt("threshold", "number", 20.0, positional=True))),
    _e("gelu", _gelu_any, F.gelu, "activation", "torch.nn.functional.gelu",
       "x·Φ(x); approximate='tanh': the tanh formula",
       options=(Opt("approximate", "choice", "none", ("none", "tanh")),)),
    _elem("silu", _silu, F.silu, "x·sigmoid(x)", "activation", ("torch.nn.functional.silu",)),
    _e("elu", _elu_alpha, F.elu, "activation", "torch.nn.functional.elu", "x if x>0 else α(e^x-1)", ("0",),
       (Opt("alpha", "number", 1.0, positional=True),)),
    _e("leaky_relu", _leaky, F.leaky_relu, "activation", "torch.nn.functional.leaky_relu",
       "x if x>0 else negative_slope·x", ("0",), (Opt("negative_slope", "number", 0.01, positional=True),)),
]


ROWS: list[Func] = [
    *_MOVED,
    # elementary
    _e("log1p", lambda x: sp.log(1 + x), torch.log1p, "elementary", "torch.log1p torch.special.log1p", "log(1+x)", ("-1",)),
    _e("expm1", lambda x: exact_exp(x) - 1, torch.expm1, "elementary", "torch.expm1 torch.special.expm1", "e^x-1"),
    _e("log2", lambda x: sp.log(x) / sp.log(2), torch.log2, "elementary", "torch.log2", "log(x)/log(2)", ("0",)),
    _e("log10", lambda x: sp.log(x) / sp.log(10), torch.log10, "elementary", "torch.log10", "log(x)/log(10)", ("0",)),
    _e("exp2", lambda x: 2 ** x, torch.exp2, "elementary", "torch.exp2 torch.special.exp2", "2^x"),
    _e("square", lambda x: x ** 2, torch.square, "elementary", "torch.square", "x^2"),
    _e("rsqrt", lambda x: 1 / sp.sqrt(x), torch.rsqrt, "elementary", "torch.rsqrt", "1/sqrt(x)", ("0",)),
    _e("reciprocal", lambda x: 1 / x, torch.reciprocal, "elementary", "torch.reciprocal", "1/x", ("0",)),
    _e("sign", sp.sign, torch.sign, "elementary", "torch.sign", "-1, 0 or 1", ("0",)),
    _e("asin", sp.asin, torch.asin, "elementary", "torch.asin", special="-1, 1"),
    _e("acos", sp.acos, torch.acos, "elementary", "torch.acos", special="-1, 1"),
    _e("acosh", sp.acosh, torch.acosh, "elementary", "torch.acosh", special="1"),
    _e("atanh", sp.atanh, torch.atanh, "elementary", "torch.atanh", special="-1, 1"),
    _e("deg2rad", lambda x: x * sp.pi / 180, torch.deg2rad, "elementary", "torch.deg2rad", "x·π/180"),
    _e("rad2deg", lambda x: x * 180 / sp.pi, torch.rad2deg, "elementary", "torch.rad2deg", "x·180/π"),
    # binary
    _b("atan2", sp.atan2, pairwise(torch.atan2), "torch.atan2", "angle of (other, input)", ("input=0 and other<=0",)),
    _b("hypot", lambda a, b: sp.sqrt(a ** 2 + b ** 2), _torch_hypot, "torch.hypot", "sqrt(a²+b²)", ("(0, 0)",)),
    _b("logaddexp", _logaddexp, pairwise(torch.logaddexp), "torch.logaddexp", "log(e^a+e^b)"),
    _b("logaddexp2", _logaddexp2, pairwise(torch.logaddexp2), "torch.logaddexp2", "log2(2^a+2^b)"),
    _b("pow", _pow, pairwise(torch.pow), "torch.pow", "a^b, tensor exponent", ("base 0",)),
    _b("copysign", _copysign, pairwise(torch.copysign), "torch.copysign", "|a| with the sign of b",
       ("input=0", "other=0")),
    _b("fmod", torch_fmod, pairwise(torch.fmod), "torch.fmod", "a − b·trunc(a/b) (the sign of a)",
       ("a/b a nonzero integer (a jump)", "b=0")),
    _b("remainder", torch_remainder, pairwise(torch.remainder), "torch.remainder",
       "a − b·floor(a/b) (the sign of b)", ("a/b an integer (a jump)", "b=0")),
    _b("xlogy", lambda a, b: a * sp.log(b), pairwise(torch.xlogy), "torch.special.xlogy", "a·log(b)",
       ("input=0",), family="special"),
    _b("xlog1py", lambda a, b: a * sp.log(1 + b), pairwise(torch.special.xlog1py), "torch.special.xlog1py",
       "a·log(1+b)", ("input=0",), family="special"),
    Func("clamp", _kw_elem(_clamp), torch.clamp, doc="min(max(x, min), max)", family="binary",
         torch_names=("torch.clamp",), special="min, max",
         options=(Opt("min", "number", None, positional=True), Opt("max", "number", None, positional=True))),
    # torch.special
    _e("lgamma", _lgamma, torch.lgamma, "special", "torch.lgamma torch.special.gammaln", "log|Γ(x)|",
       ("0", "-1", "-2")),
    _e("digamma", lambda x: sp.polygamma(0, x), torch.digamma, "special", "torch.digamma torch.special.digamma torch.special.psi",
       "ψ(x) = Γ'(x)/Γ(x)", ("0", "-1")),
    Func("polygamma", elementwise2(_polygamma), _torch_polygamma, (2, 2), number_args=(0,),
         doc="n-th derivative of ψ", family="special", torch_names=("torch.polygamma", "torch.special.polygamma"),
         special="0, -1"),
    Func("multigammaln", _kw_elem(_multigammaln), torch.special.multigammaln, doc="log of the multivariate Γ",
         family="special", torch_names=("torch.special.multigammaln",), special="(p-1)/2",
         options=(Opt("p", "int", None, positional=True),)),
    Func("gammainc", elementwise2(_incomplete_gamma("gammainc", sp.lowergamma)),
         _torch_incomplete_gamma(torch.special.gammainc), (2, 2), number_args=(0,),
         doc="regularized lower incomplete Γ(a, x), a a number", family="special",
         torch_names=("torch.special.gammainc", "torch.igamma"), special="x = 0"),
    Func("gammaincc", elementwise2(_incomplete_gamma("gammaincc", sp.uppergamma)),
         _torch_incomplete_gamma(torch.special.gammaincc), (2, 2), number_args=(0,),
         doc="regularized upper incomplete Γ(a, x), a a number", family="special",
         torch_names=("torch.special.gammaincc", "torch.igammac"), special="x = 0"),
    _e("erfc", sp.erfc, torch.erfc, "special", "torch.erfc torch.special.erfc", "1-erf(x)"),
    _e("erfinv", sp.erfinv, torch.erfinv, "special", "torch.erfinv torch.special.erfinv", "inverse of erf",
       ("-1", "1")),
    _e("erfcx", lambda x: exact_exp(x ** 2) * sp.erfc(x), torch.special.erfcx, "special", "torch.special.erfcx",
       "e^(x²)·erfc(x)", dtypes=F64_F32),
    _e("ndtr", _ndtr, torch.special.ndtr, "special", "torch.special.ndtr", "standard normal CDF"),
    _e("ndtri", lambda x: sp.sqrt(2) * sp.erfinv(2 * x - 1), torch.special.ndtri, "special",
       "torch.special.ndtri", "inverse of ndtr", ("0", "1"), dtypes=F64_F32),
    _e("log_ndtr", lambda x: sp.log(sp.erfc(-x / sp.sqrt(2)) / 2), torch.special.log_ndtr, "special",
       "torch.special.log_ndtr", "log of the standard normal CDF", dtypes=F64_F32),
    Func("logit", _kw_elem(_logit), torch.logit, doc="log(x/(1-x)), x clamped to [eps, 1-eps]",
         family="special", torch_names=("torch.logit", "torch.special.logit"), special="0, 1, eps, 1-eps",
         options=(Opt("eps", "number", None, positional=True, low=0),)),
    _e("expit", _sigmoid, torch.special.expit, "special", "torch.special.expit", "1/(1+e^-x)"),
    _e("sinc", lambda x: sp.sinc(sp.pi * x), torch.special.sinc, "special", "torch.special.sinc",
       "sin(πx)/(πx), 1 at 0", ("0",)),
    _e("entr", lambda x: -x * sp.log(x), torch.special.entr, "special", "torch.special.entr", "-x·log(x)", ("0",)),
    _e("i0", lambda x: sp.besseli(0, x), torch.special.i0, "special", "torch.i0 torch.special.i0",
       "modified Bessel I₀"),
    _e("i0e", _scaled_bessel(0), torch.special.i0e, "special", "torch.special.i0e", "e^-|x|·I₀(x)", ("0",)),
    _e("i1", lambda x: sp.besseli(1, x), torch.special.i1, "special", "torch.special.i1", "modified Bessel I₁", dtypes=F64_F32),
    _e("i1e", _scaled_bessel(1), torch.special.i1e, "special", "torch.special.i1e", "e^-|x|·I₁(x)", ("0",), dtypes=F64_F32),
    # activations of torch.nn.functional
    _e("hardtanh", lambda x, min_val=-1, max_val=1: _clip(x, min_val, max_val), F.hardtanh, "activation",
       "torch.nn.functional.hardtanh", "x clamped to [min_val, max_val]", ("min_val", "max_val"),
       (Opt("min_val", "number", -1.0, positional=True), Opt("max_val", "number", 1.0, positional=True))),
    _e("relu6", lambda x: _clip(x, 0, 6), F.relu6, "activation", "torch.nn.functional.relu6",
       "min(max(x, 0), 6)", ("0", "6")),
    _e("hardsigmoid", lambda x: _clip(x / 6 + sp.S.Half, 0, 1), F.hardsigmoid, "activation",
       "torch.nn.functional.hardsigmoid", "min(max(x/6+1/2, 0), 1)", ("-3", "3")),
    _e("hardswish", lambda x: x * _clip(x + 3, 0, 6) / 6, F.hardswish, "activation",
       "torch.nn.functional.hardswish", "x·min(max(x+3, 0), 6)/6", ("-3", "3")),
    _e("mish", lambda x: x * sp.tanh(_softplus(x)), F.mish, "activation", "torch.nn.functional.mish",
       "x·tanh(softplus(x))"),
    _e("selu", _selu, F.selu, "activation", "torch.nn.functional.selu", "scale·elu(x, alpha)", ("0",)),
    _e("celu", _celu, F.celu, "activation", "torch.nn.functional.celu", "x if x>0 else α(e^(x/α)-1)", ("0",),
       (Opt("alpha", "number", 1.0, positional=True),)),
    _e("softsign", lambda x: x / (1 + sp.Abs(x)), F.softsign, "activation", "torch.nn.functional.softsign",
       "x/(1+|x|)", ("0",)),
    _e("logsigmoid", lambda x: -sp.log(1 + exact_exp(-x)), F.logsigmoid, "activation",
       "torch.nn.functional.logsigmoid", "-log(1+e^-x)"),
    _e("tanhshrink", lambda x: x - sp.tanh(x), F.tanhshrink, "activation", "torch.nn.functional.tanhshrink",
       "x - tanh(x)"),
    _e("softshrink", _softshrink, F.softshrink, "activation", "torch.nn.functional.softshrink",
       "x∓λ outside [-λ, λ], else 0", ("-lambd", "lambd"), (Opt("lambd", "number", 0.5, positional=True, low=0),)),
    _e("hardshrink", _hardshrink, F.hardshrink, "activation", "torch.nn.functional.hardshrink",
       "x outside [-λ, λ], else 0", ("-lambd", "lambd"), (Opt("lambd", "number", 0.5, positional=True, low=0),)),
    _e("threshold", _threshold, F.threshold, "activation", "torch.nn.functional.threshold",
       "x if x > threshold else value", ("threshold",),
       (Opt("threshold", "number", None, positional=True), Opt("value", "number", None, positional=True))),
    Func("prelu", _math_prelu, _torch_prelu, (2, 2), doc="x if x>0 else weight·x", family="activation",
         torch_names=("torch.nn.functional.prelu",), special="0"),
    Func("glu", _math_glu, _torch_glu, dim=True, doc="a·sigmoid(b), a and b the halves along dim",
         family="activation", torch_names=("torch.nn.functional.glu",)),
    _e("rrelu", lambda x, lower=sp.Rational(1, 8), upper=sp.Rational(1, 3): _leaky(x, sp.sympify(lower + upper) / 2), _torch_rrelu, "activation",
       "torch.nn.functional.rrelu", "eval mode (training=False): leaky_relu with slope (lower+upper)/2", ("0",),
       (Opt("lower", "number", 1 / 8, positional=True), Opt("upper", "number", 1 / 3, positional=True))),
    Func("softmin", lambda a, dim=-1: softmax_of(arr(-a), dim), _torch_softmin, dim=True,
         doc="softmax(-x)", family="activation", torch_names=("torch.nn.functional.softmin",)),
]
