"""The reviewed table of what the `torch:` key may name, beyond the function library.

The `torch:` key's allowlist (:mod:`diffcheck.language.torch_key`) is the union of

1. every torch callable that a row of :mod:`diffcheck.language.library` uses (derived from the
   table automatically: adding a library row allows its torch function, with no edit here);
2. :data:`FUNCTIONS`: named functions of torch's math namespaces (``torch``,
   ``torch.nn.functional``, ``torch.special``, ``torch.linalg``), each with its signature;
3. :data:`METHODS`: named tensor methods (``x.sum(dim=0)``, ``torch.Tensor.detach(x)``), each
   with its signature (without ``self``), and :data:`PROPERTIES` (``x.T``, ``x.mT``).

Nothing else is reachable: no other module, no class, no storage, no private name, no string
literal except the values a keyword listed here takes.

**Extending it.** Add one line: ``"torch.special.foo": sig("input, other, *, bar=None")``. The
signature is written as torch documents it, in Python syntax; keywords whose value is text
list the texts allowed (``strings={"reduction": REDUCTIONS}``), and keywords that must keep one
value list it (``fixed={"training": (False,)}``: a random or state-changing option). A call is
checked against the signature when the case is loaded: too many or missing arguments, an
unknown keyword (with "did you mean") are case-file errors that show the signature. Several
signatures separated by ``|`` are overloads; a call must fit one. Before adding a name, make
sure it reads no file, loads no code, changes no global state (seeds, generators, defaults,
flags) and draws no random numbers; :data:`NEVER` lists names that must never be added.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field

REDUCTIONS = ("none", "mean", "sum")


@dataclass(frozen=True)
class Params:
    """One signature: positional names, how many of them are required, keyword-only names."""

    positional: tuple[str, ...]
    required: int
    keyword_only: tuple[str, ...]
    required_keywords: tuple[str, ...]
    varargs: str | None
    text: str


@dataclass(frozen=True)
class Sig:
    """The signatures (overloads) of one function, and the literal values its keywords take."""

    overloads: tuple[Params, ...]
    strings: dict[str, tuple[str, ...]] = field(default_factory=dict)
    fixed: dict[str, tuple] = field(default_factory=dict)
    string_args: dict[int, str] = field(default_factory=dict)  # position -> what the text is

    @property
    def text(self) -> str:
        return " | ".join(f"({p.text})" for p in self.overloads)

    def names(self) -> set[str]:
        return {n for p in self.overloads for n in p.positional + p.keyword_only}

    def with_self(self) -> "Sig":
        """The unbound form of a method signature: ``torch.Tensor.sum(input, ...)``."""
        return Sig(tuple(_parse("input" + (", " + p.text if p.text else "")) for p in self.overloads),
                   self.strings, self.fixed, {k + 1: v for k, v in self.string_args.items()})


def _parse(text: str) -> Params:
    args = ast.parse(f"def f({text}): pass").body[0].args  # our own table's text, never a case's
    positional = tuple(a.arg for a in args.posonlyargs + args.args)
    required = len(positional) - len(args.defaults)
    kwonly = tuple(a.arg for a in args.kwonlyargs)
    required_kw = tuple(a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults) if d is None)
    return Params(positional, required, kwonly, required_kw, args.vararg.arg if args.vararg else None, text)


def sig(*overloads: str, strings: dict | None = None, fixed: dict | None = None,
        string_args: dict | None = None) -> Sig:
    strings = dict(strings or {})
    parsed = tuple(_parse(o) for o in overloads)
    if any("reduction" in p.positional + p.keyword_only for p in parsed):
        strings.setdefault("reduction", REDUCTIONS)
    return Sig(parsed, strings, dict(fixed or {}), dict(string_args or {}))


_X = sig("input")
_XY = sig("input, other")
_REDUCE = sig("input, dim=None, keepdim=False, *, dtype=None")
_VAR = sig("input, dim=None, *, correction=1, keepdim=False", "input, dim=None, unbiased=True, keepdim=False")
_MAXMIN = sig("input", "input, dim, keepdim=False", "input, other")
_SOFTMAX = sig("input, dim, dtype=None")
_F_SOFTMAX = sig("input, dim=None, *, dtype=None")
_LOSS = sig("input, target, *, reduction='mean'")

#: functions, by their full name (``F.x`` is ``torch.nn.functional.x``)
FUNCTIONS: dict[str, Sig] = {}

_UNARY = """abs absolute acos arccos acosh arccosh asin arcsin asinh arcsinh atan arctan atanh arctanh
    ceil cos cosh deg2rad digamma erf erfc erfinv exp exp2 expm1 fix floor frac i0 lgamma log log10 log1p
    log2 neg negative positive rad2deg reciprocal relu rsqrt sigmoid sign sgn signbit sin sinc sinh sqrt
    square tan tanh trunc isfinite isnan isinf t det logdet slogdet inverse trace matrix_exp""".split()
_BINARY = """atan2 arctan2 hypot logaddexp logaddexp2 maximum minimum fmax fmin copysign fmod remainder
    xlogy matmul vdot inner kron eq ne lt le gt ge
    greater less greater_equal less_equal equal""".split()
for _n in _UNARY:
    FUNCTIONS[f"torch.{_n}"] = _X
for _n in _BINARY:
    FUNCTIONS[f"torch.{_n}"] = _XY

FUNCTIONS.update({
    "torch.add": sig("input, other, *, alpha=1"),
    "torch.sub": sig("input, other, *, alpha=1"),
    "torch.subtract": sig("input, other, *, alpha=1"),
    "torch.mul": _XY, "torch.multiply": _XY,
    "torch.div": sig("input, other, *, rounding_mode=None", strings={"rounding_mode": ("trunc", "floor")}),
    "torch.divide": sig("input, other, *, rounding_mode=None", strings={"rounding_mode": ("trunc", "floor")}),
    "torch.true_divide": _XY,
    "torch.pow": sig("input, exponent"), "torch.float_power": sig("input, exponent"),
    "torch.heaviside": sig("input, values"), "torch.mm": sig("input, mat2"), "torch.bmm": sig("input, mat2"),
    "torch.mv": sig("input, vec"), "torch.dot": sig("input, tensor"), "torch.outer": sig("input, vec2"),
    "torch.ger": sig("input, vec2"),
    "torch.round": sig("input, *, decimals=0"),
    "torch.logit": sig("input, eps=None"),
    "torch.nan_to_num": sig("input, nan=0.0, posinf=None, neginf=None"),
    "torch.polygamma": sig("n, input"),
    "torch.mvlgamma": sig("input, p"),
    "torch.lerp": sig("input, end, weight"),
    "torch.dist": sig("input, other, p=2"),
    "torch.clamp": sig("input, min=None, max=None"),
    "torch.clip": sig("input, min=None, max=None"),
    "torch.clamp_min": sig("input, min"),
    "torch.clamp_max": sig("input, max"),
    "torch.where": sig("condition, input, other"),
    "torch.addcmul": sig("input, tensor1, tensor2, *, value=1"),
    "torch.addcdiv": sig("input, tensor1, tensor2, *, value=1"),
    "torch.addmm": sig("input, mat1, mat2, *, beta=1, alpha=1"),
    "torch.addmv": sig("input, mat, vec, *, beta=1, alpha=1"),
    "torch.baddbmm": sig("input, batch1, batch2, *, beta=1, alpha=1"),
    # reductions and scans
    "torch.sum": _REDUCE, "torch.mean": _REDUCE, "torch.nansum": _REDUCE, "torch.nanmean": _REDUCE,
    "torch.prod": sig("input, dim=None, keepdim=False, *, dtype=None"),
    "torch.amax": sig("input, dim=(), keepdim=False"), "torch.amin": sig("input, dim=(), keepdim=False"),
    "torch.max": _MAXMIN, "torch.min": _MAXMIN,
    "torch.argmax": sig("input, dim=None, keepdim=False"), "torch.argmin": sig("input, dim=None, keepdim=False"),
    "torch.logsumexp": sig("input, dim, keepdim=False"),
    "torch.norm": sig("input, p='fro', dim=None, keepdim=False, dtype=None", strings={"p": ("fro", "nuc")}),
    "torch.var": _VAR, "torch.std": _VAR, "torch.var_mean": _VAR, "torch.std_mean": _VAR,
    "torch.cumsum": sig("input, dim, *, dtype=None"), "torch.cumprod": sig("input, dim, *, dtype=None"),
    "torch.logcumsumexp": sig("input, dim"),
    "torch.cummax": sig("input, dim"), "torch.cummin": sig("input, dim"),
    "torch.median": sig("input", "input, dim, keepdim=False"),
    "torch.sort": sig("input, dim=-1, descending=False, *, stable=False"),
    "torch.topk": sig("input, k, dim=-1, largest=True, sorted=True"),
    "torch.kthvalue": sig("input, k, dim=-1, keepdim=False"),
    "torch.diff": sig("input, n=1, dim=-1, prepend=None, append=None"),
    "torch.trapezoid": sig("y, x=None, *, dx=None, dim=-1"),
    "torch.cumulative_trapezoid": sig("y, x=None, *, dx=None, dim=-1"),
    "torch.softmax": _SOFTMAX, "torch.log_softmax": _SOFTMAX,
    # linear algebra
    "torch.cross": sig("input, other, dim=None"),
    "torch.diag": sig("input, diagonal=0"),
    "torch.diagonal": sig("input, offset=0, dim1=0, dim2=1"),
    "torch.diag_embed": sig("input, offset=0, dim1=-2, dim2=-1"),
    "torch.tril": sig("input, diagonal=0"), "torch.triu": sig("input, diagonal=0"),
    "torch.matrix_power": sig("input, n"),
    "torch.cholesky": sig("input, upper=False"),
    "torch.tensordot": sig("a, b, dims=2"),
    "torch.einsum": sig("equation, *operands", string_args={0: "the equation"}),
    "torch.cdist": sig("x1, x2, p=2.0, compute_mode='use_mm_for_euclid_dist_if_necessary'",
                       strings={"compute_mode": ("use_mm_for_euclid_dist_if_necessary",
                                                 "use_mm_for_euclid_dist", "donot_use_mm_for_euclid_dist")}),
    # shapes
    "torch.reshape": sig("input, shape"),
    "torch.flatten": sig("input, start_dim=0, end_dim=-1"),
    "torch.unflatten": sig("input, dim, sizes"),
    "torch.squeeze": sig("input, dim=None"), "torch.unsqueeze": sig("input, dim"),
    "torch.transpose": sig("input, dim0, dim1"), "torch.swapaxes": sig("input, axis0, axis1"),
    "torch.permute": sig("input, dims"), "torch.movedim": sig("input, source, destination"),
    "torch.cat": sig("tensors, dim=0"), "torch.concat": sig("tensors, dim=0"),
    "torch.stack": sig("tensors, dim=0"), "torch.hstack": sig("tensors"), "torch.vstack": sig("tensors"),
    "torch.split": sig("tensor, split_size_or_sections, dim=0"),
    "torch.chunk": sig("input, chunks, dim=0"),
    "torch.unbind": sig("input, dim=0"),
    "torch.narrow": sig("input, dim, start, length"),
    "torch.select": sig("input, dim, index"),
    "torch.index_select": sig("input, dim, index"),
    "torch.gather": sig("input, dim, index"),
    "torch.take_along_dim": sig("input, indices, dim=None"),
    "torch.flip": sig("input, dims"), "torch.roll": sig("input, shifts, dims=None"),
    "torch.repeat_interleave": sig("input, repeats, dim=None"),
    "torch.tile": sig("input, dims"), "torch.broadcast_to": sig("input, size"),
    "torch.atleast_1d": sig("*tensors"), "torch.atleast_2d": sig("*tensors"),
    # constants built from data (no global state: the dtype is given or inferred)
    "torch.zeros_like": sig("input, *, dtype=None"), "torch.ones_like": sig("input, *, dtype=None"),
    "torch.full_like": sig("input, fill_value, *, dtype=None"),
    "torch.zeros": sig("*size, dtype=None"), "torch.ones": sig("*size, dtype=None"),
    "torch.full": sig("size, fill_value, *, dtype=None"),
    "torch.eye": sig("n, m=None, *, dtype=None"),
    "torch.arange": sig("end, *, dtype=None", "start, end, step=1, *, dtype=None"),
    "torch.linspace": sig("start, end, steps, *, dtype=None"),
    "torch.tensor": sig("data, *, dtype=None"),
    "torch.as_tensor": sig("data, dtype=None"),
})

_F = "torch.nn.functional."
FUNCTIONS.update({_F + k: v for k, v in {
    # activations
    "relu": sig("input, inplace=False"), "relu6": sig("input, inplace=False"),
    "elu": sig("input, alpha=1.0, inplace=False"), "selu": sig("input, inplace=False"),
    "celu": sig("input, alpha=1.0, inplace=False"),
    "leaky_relu": sig("input, negative_slope=0.01, inplace=False"),
    "prelu": sig("input, weight"),
    "rrelu": sig("input, lower=0.125, upper=0.3333333333333333, training=False, inplace=False",
                 fixed={"training": (False,)}),  # training=True draws random numbers
    "gelu": sig("input, approximate='none'", strings={"approximate": ("none", "tanh")}),
    "glu": sig("input, dim=-1"),
    "hardtanh": sig("input, min_val=-1.0, max_val=1.0, inplace=False"),
    "hardswish": sig("input, inplace=False"), "hardsigmoid": sig("input, inplace=False"),
    "silu": sig("input, inplace=False"), "mish": sig("input, inplace=False"),
    "logsigmoid": _X, "tanhshrink": _X, "softsign": _X, "sigmoid": _X, "tanh": _X,
    "softplus": sig("input, beta=1.0, threshold=20.0"),
    "softshrink": sig("input, lambd=0.5"), "hardshrink": sig("input, lambd=0.5"),
    "threshold": sig("input, threshold, value, inplace=False"),
    "softmax": _F_SOFTMAX, "softmin": _F_SOFTMAX, "log_softmax": _F_SOFTMAX,
    "normalize": sig("input, p=2.0, dim=1, eps=1e-12"),
    # layers
    "linear": sig("input, weight, bias=None"),
    "bilinear": sig("input1, input2, weight, bias=None"),
    "layer_norm": sig("input, normalized_shape, weight=None, bias=None, eps=1e-05"),
    "rms_norm": sig("input, normalized_shape, weight=None, eps=None"),
    "group_norm": sig("input, num_groups, weight=None, bias=None, eps=1e-05"),
    "batch_norm": sig("input, running_mean, running_var, weight=None, bias=None, training=False, "
                      "momentum=0.1, eps=1e-05"),
    "instance_norm": sig("input, running_mean=None, running_var=None, weight=None, bias=None, "
                         "use_input_stats=True, momentum=0.1, eps=1e-05"),
    "conv1d": sig("input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1",
                  strings={"padding": ("valid", "same")}),
    "conv2d": sig("input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1",
                  strings={"padding": ("valid", "same")}),
    "avg_pool1d": sig("input, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True"),
    "max_pool1d": sig("input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, "
                      "return_indices=False"),
    "pad": sig("input, pad, mode='constant', value=None",
               strings={"mode": ("constant", "reflect", "replicate", "circular")}),
    "scaled_dot_product_attention": sig(
        "query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None, enable_gqa=False",
        fixed={"dropout_p": (0, 0.0)}),  # dropout draws random numbers
    "one_hot": sig("input, num_classes=-1"),
    "embedding": sig("input, weight, padding_idx=None"),
    "cosine_similarity": sig("x1, x2, dim=1, eps=1e-08"),
    "pairwise_distance": sig("x1, x2, p=2.0, eps=1e-06, keepdim=False"),
    "pdist": sig("input, p=2"),
    # losses
    "mse_loss": sig("input, target, *, reduction='mean', weight=None"),
    "l1_loss": _LOSS, "soft_margin_loss": _LOSS, "multilabel_margin_loss": _LOSS,
    "smooth_l1_loss": sig("input, target, *, reduction='mean', beta=1.0"),
    "huber_loss": sig("input, target, *, reduction='mean', delta=1.0, weight=None"),
    "binary_cross_entropy": sig("input, target, weight=None, *, reduction='mean'"),
    "binary_cross_entropy_with_logits": sig("input, target, weight=None, *, reduction='mean', pos_weight=None"),
    "cross_entropy": sig("input, target, weight=None, *, ignore_index=-100, reduction='mean', "
                         "label_smoothing=0.0"),
    "nll_loss": sig("input, target, weight=None, *, ignore_index=-100, reduction='mean'"),
    "kl_div": sig("input, target, *, reduction='mean', log_target=False",
                  strings={"reduction": REDUCTIONS + ("batchmean",)}),
    "poisson_nll_loss": sig("input, target, log_input=True, full=False, *, eps=1e-08, reduction='mean'"),
    "gaussian_nll_loss": sig("input, target, var, full=False, eps=1e-06, reduction='mean'"),
    "multilabel_soft_margin_loss": sig("input, target, weight=None, *, reduction='mean'"),
    "multi_margin_loss": sig("input, target, p=1, margin=1.0, weight=None, *, reduction='mean'"),
    "margin_ranking_loss": sig("input1, input2, target, margin=0, *, reduction='mean'"),
    "hinge_embedding_loss": sig("input, target, margin=1.0, *, reduction='mean'"),
    "cosine_embedding_loss": sig("input1, input2, target, margin=0, *, reduction='mean'"),
    "triplet_margin_loss": sig("anchor, positive, negative, margin=1.0, p=2, eps=1e-06, swap=False, *, "
                               "reduction='mean'"),
}.items()})

_S = "torch.special."
FUNCTIONS.update({_S + n: _X for n in """expit erf erfc erfcx erfinv ndtr ndtri log_ndtr i0 i0e i1 i1e sinc
    entr gammaln digamma psi log1p expm1 exp2 round bessel_j0 bessel_j1""".split()})
FUNCTIONS.update({
    _S + "logit": sig("input, eps=None"),
    _S + "xlogy": _XY, _S + "xlog1py": _XY, _S + "zeta": _XY,
    _S + "gammainc": _XY, _S + "gammaincc": _XY,
    _S + "polygamma": sig("n, input"), _S + "multigammaln": sig("input, p"),
    _S + "logsumexp": sig("input, dim, keepdim=False"),
    _S + "softmax": _SOFTMAX, _S + "log_softmax": _SOFTMAX,
})

_L = "torch.linalg."
FUNCTIONS.update({
    _L + "norm": sig("input, ord=None, dim=None, keepdim=False, *, dtype=None", strings={"ord": ("fro", "nuc")}),
    _L + "vector_norm": sig("x, ord=2, dim=None, keepdim=False, *, dtype=None"),
    _L + "matrix_norm": sig("input, ord='fro', dim=(-2, -1), keepdim=False, *, dtype=None",
                            strings={"ord": ("fro", "nuc")}),
    _L + "det": sig("A"), _L + "slogdet": sig("A"), _L + "inv": sig("A"), _L + "svdvals": sig("A"),
    _L + "matrix_exp": sig("input"), _L + "eigvalsh": sig("input, UPLO='L'", strings={"UPLO": ("L", "U")}),
    _L + "eigh": sig("input, UPLO='L'", strings={"UPLO": ("L", "U")}),
    _L + "solve": sig("A, B, *, left=True"),
    _L + "solve_triangular": sig("input, B, *, upper, left=True, unitriangular=False"),
    _L + "cholesky": sig("input, *, upper=False"),
    _L + "qr": sig("A, mode='reduced'", strings={"mode": ("reduced", "complete", "r")}),
    _L + "svd": sig("A, full_matrices=True"),
    _L + "pinv": sig("input, *, atol=None, rtol=None, hermitian=False"),
    _L + "matrix_power": sig("input, n"),
    _L + "cross": sig("input, other, *, dim=-1"),
    _L + "vecdot": sig("x, y, *, dim=-1"),
    _L + "multi_dot": sig("tensors"),
    _L + "cond": sig("input, p=None", strings={"p": ("fro", "nuc")}),
    _L + "diagonal": sig("A, *, offset=0, dim1=-2, dim2=-1"),
    _L + "vander": sig("x, *, N=None"),
    _L + "matmul": sig("input, other"),
})

_M = sig("")
_MREDUCE = sig("dim=None, keepdim=False, *, dtype=None")
#: tensor methods (``x.name(...)`` and ``torch.Tensor.name(x, ...)``), signatures without self
METHODS: dict[str, Sig] = {n: _M for n in """exp log log1p expm1 log2 log10 exp2 sqrt rsqrt abs absolute neg
    negative reciprocal square sin cos tan sinh cosh tanh asin acos atan asinh acosh atanh arcsin arccos arctan
    sigmoid relu erf erfc erfinv lgamma digamma sign sgn floor ceil trunc frac t detach det logdet slogdet
    inverse trace float double half bfloat16 contiguous clone isfinite isnan isinf numel dim matrix_exp
    i0 sinc""".split()}
METHODS.update({n: sig("other") for n in """atan2 arctan2 hypot logaddexp logaddexp2 maximum minimum fmax fmin
    xlogy copysign fmod remainder matmul vdot inner kron type_as view_as reshape_as
    expand_as eq ne lt le gt ge""".split()})
METHODS.update({"mm": sig("mat2"), "bmm": sig("mat2"), "mv": sig("vec"), "dot": sig("tensor"),
                "outer": sig("vec2"), "heaviside": sig("values"), "float_power": sig("exponent")})
METHODS.update({
    "sum": _MREDUCE, "mean": _MREDUCE, "nansum": _MREDUCE, "nanmean": _MREDUCE,
    "prod": sig("dim=None, keepdim=False, *, dtype=None"),
    "pow": sig("exponent"),
    "add": sig("other, *, alpha=1"), "sub": sig("other, *, alpha=1"), "mul": sig("other"),
    "div": sig("other, *, rounding_mode=None", strings={"rounding_mode": ("trunc", "floor")}),
    "clamp": sig("min=None, max=None"), "clip": sig("min=None, max=None"),
    "clamp_min": sig("min"), "clamp_max": sig("max"),
    "round": sig("*, decimals=0"), "logit": sig("eps=None"),
    "nan_to_num": sig("nan=0.0, posinf=None, neginf=None"),
    "lerp": sig("end, weight"), "addcmul": sig("tensor1, tensor2, *, value=1"),
    "addcdiv": sig("tensor1, tensor2, *, value=1"),
    "reshape": sig("*shape"), "view": sig("*shape"), "expand": sig("*sizes"), "repeat": sig("*sizes"),
    "unsqueeze": sig("dim"), "squeeze": sig("dim=None"), "transpose": sig("dim0, dim1"),
    "swapaxes": sig("axis0, axis1"), "permute": sig("*dims"), "movedim": sig("source, destination"),
    "flatten": sig("start_dim=0, end_dim=-1"), "unflatten": sig("dim, sizes"),
    "flip": sig("*dims"), "roll": sig("shifts, dims=None"), "tile": sig("dims"),
    "narrow": sig("dim, start, length"), "select": sig("dim, index"), "index_select": sig("dim, index"),
    "gather": sig("dim, index"), "split": sig("split_size, dim=0"), "chunk": sig("chunks, dim=0"),
    "unbind": sig("dim=0"),
    "masked_fill": sig("mask, value"), "where": sig("condition, other"),
    "softmax": sig("dim, dtype=None"), "log_softmax": sig("dim, dtype=None"),
    "logsumexp": sig("dim, keepdim=False"),
    "max": sig("", "dim, keepdim=False", "other"), "min": sig("", "dim, keepdim=False", "other"),
    "amax": sig("dim=(), keepdim=False"), "amin": sig("dim=(), keepdim=False"),
    "argmax": sig("dim=None, keepdim=False"), "argmin": sig("dim=None, keepdim=False"),
    "norm": sig("p='fro', dim=None, keepdim=False, dtype=None", strings={"p": ("fro", "nuc")}),
    "var": sig("dim=None, *, correction=1, keepdim=False", "dim=None, unbiased=True, keepdim=False"),
    "std": sig("dim=None, *, correction=1, keepdim=False", "dim=None, unbiased=True, keepdim=False"),
    "cumsum": sig("dim, *, dtype=None"), "cumprod": sig("dim, *, dtype=None"), "logcumsumexp": sig("dim"),
    "cummax": sig("dim"), "cummin": sig("dim"),
    "sort": sig("dim=-1, descending=False, *, stable=False"),
    "topk": sig("k, dim=-1, largest=True, sorted=True"),
    "diag": sig("diagonal=0"), "diagonal": sig("offset=0, dim1=0, dim2=1"),
    "diag_embed": sig("offset=0, dim1=-2, dim2=-1"),
    "tril": sig("diagonal=0"), "triu": sig("diagonal=0"), "matrix_power": sig("n"),
    "cross": sig("other, dim=None"), "size": sig("dim=None"),
    "new_zeros": sig("*size, dtype=None"), "new_ones": sig("*size, dtype=None"),
    "new_full": sig("size, fill_value, *, dtype=None"),
})

#: tensor attributes that are data (``x.T``); ``values``/``indices``… are fields of the named
#: tuples torch returns (``torch.max(x, dim=0).values``), allowed on those only
PROPERTIES = ("T", "mT", "shape", "ndim", "dtype")
RESULT_FIELDS = ("values", "indices", "sign", "logabsdet", "Q", "R", "U", "S", "Vh", "V", "L",
                 "eigenvalues", "eigenvectors", "solution", "mean", "var", "std")

#: ``torch.<name>`` values that are data, not functions
DTYPES = ("float64", "float32", "float16", "bfloat16", "double", "float", "half", "int64", "long",
          "int32", "int", "bool", "complex64", "complex128")
NUMBERS = ("pi", "e", "inf", "nan")

#: names that must never enter the allowlist: files, code loading, global state, randomness.
#: The derived part is checked against it too (a library row using one of them is a bug).
NEVER = frozenset("""load save from_file hub jit package ops classes library utils backends distributed
    multiprocessing cuda mps xpu compile export manual_seed seed initial_seed get_rng_state set_rng_state
    default_generator Generator set_default_dtype set_default_device set_default_tensor_type
    set_num_threads set_num_interop_threads set_printoptions set_grad_enabled set_anomaly_enabled
    use_deterministic_algorithms set_deterministic_debug_mode set_float32_matmul_precision
    set_flush_denormal set_warn_always autocast autograd func fx onnx profiler testing storage
    UntypedStorage TypedStorage FloatStorage DoubleStorage CompilationUnit ScriptModule ScriptFunction
    serialization dynamo compiler overrides cpp register_hook register_post_accumulate_grad_hook
    backward retain_grad requires_grad_ grad grad_fn data set_ storage untyped_storage data_ptr
    share_memory_ pin_memory tolist numpy item apply_ map_ copy_ fill_ zero_ uniform_ normal_ bernoulli
    bernoulli_ multinomial rand randn randint randperm rand_like randn_like randint_like normal poisson
    dropout dropout1d dropout2d dropout3d alpha_dropout feature_alpha_dropout gumbel_softmax
    empty empty_like set_submodule mro PyTorchFileWriter PyTorchFileReader ScriptObject import_ir_module
    import_ir_module_from_buffer get_file_path""".split())
