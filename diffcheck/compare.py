"""The comparison policy: tolerances, ULP errors and the outcome class of every point.

This module is the only place that decides whether torch's number agrees with the exact one.

Default tolerance (no ``tolerance:`` in the case), for a result with exact values R and
torch's values G over all checked points and entries::

    |G - R|  <=  a·eps·|R|  +  b·eps·S          a = 2, b = 8

S is the size of the exact values: the largest |R| over the checked points and over a fixed
64-point grid of the domain (32 random samples of sigmoid' on [-30, 30] may all miss the
peak 1/4 near 0 and underestimate S by 3.5×).

``eps`` is the machine epsilon of the dtype under test. The first term is a relative bound
of a few rounding errors. The second is LAPACK's idea of a test ratio: an absolute error of a
few ULPs *of the largest derivative value checked* is rounding, not a wrong formula. Why both
(measured on this machine with torch 2.13, see the README):

* torch.testing's float16 default (rtol 1e-3, atol 1e-5) rejects torch's own, correct float16
  gradients of sigmoid (2272 of the 63488 finite inputs) and tanh (4212): in the tails the
  exact derivative is tiny and torch's error is about one ULP of the output's scale.
* a pointwise ULP rule fails float32 tanh' in its tails (1e6 ULPs at x = -7.8, 8e-8 absolute).
* torch's correct kernels need up to b ≈ 5: float32 sigmoid' near x = 8.7 errs by 2.98·eps·(|R|+S)
  (1 - σ rounded), and the float32 forward-mode softmax Jacobian errs by 1.2 eps absolute on
  its diagonal p(1-p), where S = max p(1-p) ≤ 1/4, i.e. 4.8·eps·S: the error scales with
  the probabilities (up to 1), not with the Jacobian.
* a 2 % error in a float16 derivative is 20.5·eps·S at the largest derivative value, twice
  the (a+b)·eps·S = 10·eps·S allowed there; a 1e-6 relative error in float64 is 5e9 eps: both fail.

**Conditioning.** Some correct results cannot meet that rule: the exact value is small
because large terms cancel (GELU's tanh form, its second derivative in the tails: 8.35× the
allowed in float64; log(1 + x) written out near 0: 54×), and torch, evaluating the formula op
by op, makes rounding errors the size of the terms, not of the result. A point the rule fails
is therefore judged again with a per-point rounding scale taken from the exact expression
itself::

    allowed = max(a·eps·|R| + b·eps·S,  CONDITIONING·u·K,  UNDERFLOW·spacing,
                  min(UNDERFLOW·spacing/m, 1)·|R|,  FACTORIZATION·u·cond(A)·M)

* K is the running error bound of the exact expression evaluated op by op as written (no
  log1p/expm1 rewrites), in units of the unit roundoff u = eps/2: every operation's own
  rounding |v| carried to the result through the operations after it (a sum carries each
  term's error, so |a| + |b| for a ± b; a function f carries |t·f'(t)/f(t)| of its argument's
  relative error; see ``Evaluator.rounding_scale``). It is the classical first-order bound
  on evaluating the formula in floating point, so a result limited by its formula's
  cancellation is within it, whatever the size of the result.
* A sum of n terms rounds n − 1 times, in an order K cannot know (torch.sum adds pairwise,
  a loop in the user's code recursively): it counts ``sum_roundings(n)`` roundings of
  Σ|terms| (:mod:`diffcheck.reference.extended`): min(n − 1, max(⌈log₂ n⌉, √n)).
  Measured, error ÷ u·Σ|terms| of recursive float32 summation of uniform terms: 6.1 at
  n = 100, 22.7 at n = 1000, 50.6 at n = 10⁴ (torch.sum: ≤ 2.1), so log₂ n alone (10 at
  n = 1000) fell short of a loop's error wherever K decides (a cancelling sum). The
  worst case γₙ = n·u/(1 − n·u) would grant a float16 sum of 1000 terms half its Σ|terms|
  (no wrong formula could fail); with √n a mean of 1000 terms off by 1e-3 still fails in
  float32 at 246× the allowed (tests/data/cases/tolerance.yaml, tol.long_mean_loop_off).
* The inputs are exact (torch sees exactly the points the reference is evaluated at), so no
  input-perturbation term eps·Σ|xᵢ·∂R/∂xᵢ| is added: it was measured unnecessary on the
  controls (tests/data/cases/tolerance.yaml) and would grant exp(x) at x = 100 a hundred
  roundings where torch's kernel is within one. Rounded constants are in K already.
* CONDITIONING = 2, measured: the controls (GELU-tanh, mish and written-out tanh Hessians,
  cumulative-product and near-singular determinant Hessians, a scaled softmax in float32, a
  sum of 201 cancelling terms) pass at 1/8 of u·K except log(1 + x) written out, which needs
  0.93·u·K (one rounding of 1 + x, amplified 1/x-fold: the bound is attained). torch's kernels
  add their own last-ulp rounding, hence 2.
* A wrong formula still fails: its error is a fixed fraction of the terms, while K grants
  u per rounding. A 0.2 % error in a constant inside GELU's cancelling Hessian fails; the 2 %
  float16 error of the tests is 1.78× beyond (K there is below the default's allowance), the
  1e-6 bias in float32 4.5× beyond (u·K is 1000× below the default there).
* Saved outputs: torch's backward of some ops reads the op's own output, where SymPy writes
  a form that rounds differently. The logistic function: σ' = σ(1 − σ), where SymPy writes
  e⁻ˣ/(1 + e⁻ˣ)²; only the first cancels where σ is within an ulp of 1, so torch's
  derivatives of sigmoid, silu, swish, logsigmoid and softplus' carry an error of u·|x| size
  in the tails (silu″ at x = 35: exact −2.5e-14, torch −2.2e-14, 4.5× the default allowance in
  float64, 1.5× in float32). A log-sum-exp L = log Σ eᵃ: ∂L/∂aᵢ = exp(aᵢ − L), where the
  rounding of L (u·|L|) becomes a relative error |L|·u (logcumsumexp's Jacobian at logits
  of ±40: 3.5× in float64). K is therefore also taken as SAVED_OUTPUT_ROUNDINGS·Σₖ|vₖ·∂R/∂vₖ|,
  R written as autograd computes it with each saved output vₖ a symbol
  (``derive.saved_output_sensitivity``): each vₖ carries the roundings of its own kernel
  (three for 1/(1 + exp(−x)): exp, add, divide). Measured on 3000 points of [−60, 60] with
  one rounding per σ: torch's worst errors reach 0.99–1.0 of the allowance (its sigmoid is not
  correctly rounded), so one is too few. A wrong formula still fails: a relative error of
  1e-6 in silu″ is 8.8e7× the allowance, a 1e-6·σ(−x) bias that lives only in the tail
  7.8e3× (tests/data/cases/tolerance.yaml).
* Factorized matrices: torch computes det, slogdet, logdet, inv and solve by an LU
  factorization of their matrix A, and their derivatives solve with those factors (torch's
  FunctionsManual.cpp), so torch's rounding reaches a derivative amplified by cond(A), whatever
  the exact expression's own conditioning: the Hessian of a 2×2 determinant is constant (K = 0),
  and torch's, by ``.backward()`` at a matrix with cond(A) = 78, is off by 64 u on an entry that is
  exactly 0. At a failing point, the torch code is run once more under a TorchFunctionMode
  (:meth:`diffcheck.autograd.Torchside.factorization_condition`: a user's own code that calls
  torch.linalg.solve is seen too), which records each matrix it factorizes (each batch element
  with its own condition number) and which input entries that matrix depends on (a constant
  matrix: none). An entry of the derivative that differentiates by such an input (a Hessian
  entry: by either of its two) is granted FACTORIZATION·u·cond(A)·M: the normwise forward error
  of a backward-stable factorization. M is the size of what reaches that entry through the
  factorizing op's outputs (torch's derivative along that path alone; for a Hessian, the largest
  entry of its row along it), never above the largest exact value among the point's entries that
  go through one, so a large term beside det(A) that shares its inputs adds nothing to the grant.
  Entries that do not go through one get nothing (a loss log|det W| + f(x) keeps f's gradient
  to the default tolerance, however ill-conditioned W is). Measured by ``python
  tools/measure_factorization.py`` (torch.det's gradient and Hessian by ``.backward()`` and by
  torch.func, 2×2 to 4×4, cond(A) from 10 to 1e6, 40 matrices each, float64 and float32): error ÷
  u·cond(A)·M is at most 4.07 (torch.func's gradient of a 4×4 at cond 10), 2.05 from cond 100 up;
  FACTORIZATION = 8. torch.prod and torch.cumprod are treated alike (``autograd.DIVIDING``): their
  derivatives divide by the factors (∂Πx/∂xᵢ = Πx/xᵢ), so their double backward errs by tens of u
  on Hessian entries that are exactly 0 when one factor is small (torch.prod at x₀ = 0.047: 63 u),
  and the spread max|x|/min|x| of the nonzero factors stands for cond(A)
  (tests/data/cases/tolerance.yaml, tol.torch_prod_hessian_small_factor). Where that grant would exceed √eps·M, torch's own rounding may take half the
  digits and a wrong formula of that size cannot be told from it: such an entry is granted
  nothing, and a point where it fails by no more than min(FACTORIZATION·u·cond(A), 1)·M is not
  compared (counted with the singular points, and the message says why: float32 from
  cond(A) ≈ 720, float64 from 1.7e7); a larger error, or a NaN, still fails. At a matrix singular in the dtype (u·cond(A) ≥ 1)
  nothing is granted or excused: torch.det's zero gradient at a rank-one matrix (pytorch#104675)
  still fails. A wrong formula still fails: a Hessian entry of torch.det off by 1e-6 fails in
  float64 at cond(A) up to 4e3 (tests/data/cases/tolerance.yaml, with the two planted bugs a
  grant per point, not per entry, let through: a 1e-3 error beside a constant singular matrix,
  and in a flow's loss beside an ill-conditioned W).
* Underflow: an operation whose value m lies below the dtype's smallest normal number is
  rounded to the subnormal spacing, a relative error spacing/m that the result inherits
  (float16 x·exp(x) at x = -17: exp(-17) = 4.1e-8, spacing 6e-8). Such points are granted
  min(UNDERFLOW·spacing/m, 1)·|R| (and UNDERFLOW subnormal spacings at any failing point):
  never more than |R|, since an operation that underflows all the way to 0 takes the result to
  0, not beyond it. A torch value of the wrong sign or more than twice the exact one still fails
  (it was granted up to 4·|R| before: log_ndtr″ in float32 at x = −24, 5× off, passed).

K is computed only at the points the default rule fails (one extended-precision pass over
those rows), so passing runs pay nothing. Every failure reports the allowance it was judged
by ("allowed = … : rtol…·|exact| + atol…, conditioning …"); when the worst error is within
NEAR_CONDITIONING = 3 times a conditioning allowance that exceeds the default, the message
says the error is what the formula's conditioning explains and prints the ``tolerance:``
line that accepts it.

A ``tolerance: {rtol, atol}`` given in the case replaces all of this by torch.testing's rule
``|G - R| <= atol + rtol·|R|``.

Point outcome classes (``Comparison.counts``): ``pass``, ``fail`` (beyond tolerance; also
NaN or ±inf from torch where the exact limits are finite: the NaN-gradient bug at a removable
singularity or a kink, see :mod:`diffcheck.diagnostics.limits`), ``kink`` (at a point where
the exact derivative jumps, torch's value lies between the one-sided limits), ``unstable`` (exact value finite, torch NaN or ±inf), ``overflow`` (exact value beyond the
dtype's range and torch returned the infinity of its sign: correct), ``singular`` (the exact
derivative is ±inf at the point: not compared), ``undefined`` (the exact value is undefined:
not compared), ``raised`` (torch raised at this point alone, e.g. ``inv`` of a singular matrix,
where the exact value is finite: an error at that point; where the exact value is infinite or
undefined too, the point is ``singular``/``undefined`` as above). A point takes the worst class
of its entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from .case import Tolerance

EPS = {name: float(torch.finfo(getattr(torch, name)).eps) for name in ("float64", "float32", "float16", "bfloat16")}
TINY = {name: float(torch.finfo(getattr(torch, name)).smallest_normal) for name in EPS}
MAX = {name: float(torch.finfo(getattr(torch, name)).max) for name in EPS}
MANTISSA = {"float64": 52, "float32": 23, "float16": 10, "bfloat16": 7}
DEFAULT_A = 2.0
DEFAULT_B = 8.0
CONDITIONING = 2.0   # the multiple of u·K granted for conditioning (see the module docstring)
UNDERFLOW = 4.0      # subnormal spacings granted at a point the default fails (gradual underflow)
NEAR_CONDITIONING = 3.0  # an error within this multiple of the conditioning allowance is "near" it
SAVED_OUTPUT_ROUNDINGS = 3.0  # roundings in a saved σ = 1/(1 + exp(−x)): exp, add, divide (see above)
FACTORIZATION = 8.0  # u·cond(A)·max|R| granted where torch's code factorizes A (det, inv, solve; see above)

# Severity order of the point classes: a point takes the worst of its entries.
CLASSES = ("pass", "kink", "overflow", "undefined", "singular", "unstable", "fail", "raised")
_RANK = {c: i for i, c in enumerate(CLASSES)}
# Exact-value kinds produced by the reference evaluation.
FINITE, POS_INF, NEG_INF, UNDEFINED = 0, 1, 2, 3


@dataclass(frozen=True)
class Policy:
    """The tolerance actually applied to one result."""

    rtol: float
    atol: float
    rule: str  # "default" or "user"

    def describe(self) -> dict:
        return {"rtol": self.rtol, "atol": self.atol, "rule": self.rule}


def policy_for(dtype: str, scale: float, override: Tolerance | None) -> Policy:
    """The tolerance for ``dtype``; ``scale`` is S, the largest |exact value| of the result."""
    if override is not None:
        return Policy(override.rtol, override.atol, "user")
    eps = EPS[dtype]
    atol = DEFAULT_B * eps * scale if scale > 0 else DEFAULT_B * eps * TINY[dtype]
    return Policy(DEFAULT_A * eps, atol, "default")


def ulp(values: np.ndarray, dtype: str) -> np.ndarray:
    """The spacing of ``dtype`` at |values| (its subnormal spacing near and at zero)."""
    mag = np.abs(values)
    _, exponent = np.frexp(mag)  # |v| = m·2**e with m in [0.5, 1): leading bit 2**(e-1)
    smallest = np.log2(TINY[dtype])
    leading = np.where(mag > 0, np.maximum(exponent.astype(np.float64) - 1, smallest), smallest)
    return np.exp2(leading - MANTISSA[dtype])


@dataclass
class Comparison:
    """The comparison of one result: per-point classes and the error maxima."""

    point_class: np.ndarray           # (P,) class name per point
    counts: dict[str, int]
    policy: Policy
    compared: int                     # points compared (finite exact values)
    max_abs: float | None
    max_rel: float | None
    max_ulp: float | None
    worst: tuple[int, int] | None     # (point, entry) with the largest error/allowed ratio
    worst_ratio: float | None
    examples: dict[str, list[tuple[int, int]]] = field(default_factory=dict)  # class -> (point, entry)
    worst_got: float | None = None    # torch's value at ``worst``, kept when torch's whole result is not
    worst_allowed: float | None = None       # the allowed error at ``worst``
    worst_conditioning: float | None = None  # the conditioning allowance at ``worst`` (see CONDITIONING)
    accept: tuple[float, float] | None = None  # (rtol, atol) of a ``tolerance:`` that accepts every point
    worst_default: float | None = None       # the default policy's allowance at ``worst``
    worst_factorized: float | None = None    # cond(A) of the matrix torch's code factorizes at ``worst``
    undecided: int = 0                       # points not compared: beyond a factorized matrix's decidable bound
    undecided_condition: float | None = None  # the largest cond(A) among them
    point_ratio: np.ndarray | None = None  # (P,) worst error ÷ allowed per point (block-by-block comparisons)


BLOCK_CELLS = 1 << 20  # entries compared at a time: bounds the temporaries of a big Jacobian


def compare(reference: np.ndarray, kinds: np.ndarray, got: np.ndarray, dtype: str,
            override: Tolerance | None = None, intervals: np.ndarray | None = None,
            scale_floor: float = 0.0, conditioning: Callable[[np.ndarray], np.ndarray] | None = None,
            raised: np.ndarray | None = None) -> Comparison:
    """The comparison of torch's ``got`` with the exact values (see :func:`compare_rows`).

    ``conditioning(rows)``, when given, returns the rounding scale K (P_rows, n) of the exact
    expressions at those rows (:meth:`diffcheck.reference.Evaluator.rounding_scale`) and, per
    row, the smallest |value| of an operation that underflows in the dtype (+inf if none). It is
    read only when the default policy fails some points: those points are judged again with
    the allowance ``max(default, CONDITIONING·u·K)`` (u = eps/2, see the module docstring), and
    every failure then reports the allowance it was judged by. A third element, when given and
    not None, is (cond, size), each (P_rows, n): the condition number of what torch factorizes
    or divides by behind each entry, and what reaches the entry through it
    (:func:`factorization_allowance`).

    ``raised`` (P,) marks the points where torch raised (their values are NaN): each is a
    ``raised`` point where an exact value is finite, else singular or undefined."""
    first = _compare(reference, kinds, got, dtype, override, intervals, scale_floor, raised=raised)
    if conditioning is None or override is not None or not first.counts.get("fail"):
        return first
    rows = np.flatnonzero(first.point_class == "fail")
    extra = np.zeros(reference.shape)
    spacing = EPS[dtype] * TINY[dtype]  # the subnormal spacing
    scale, smallest, *rest = conditioning(rows)
    factorized = rest[0] if rest else None
    undecided = None
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        finite = np.where(np.isfinite(reference[rows]), np.abs(reference[rows]), 0.0)
        underflow = finite * np.minimum(UNDERFLOW * spacing / smallest[:, None], 1.0)
        extra[rows] = np.maximum(CONDITIONING * EPS[dtype] / 2 * np.abs(scale),
                                 np.maximum(UNDERFLOW * spacing, underflow))
        if factorized is not None:
            condition, size = factorized
            grant, excusable = factorization_allowance(condition, size, finite, dtype)
            extra[rows] = np.maximum(extra[rows], grant)
            undecided = np.zeros(reference.shape)
            undecided[rows] = excusable
    judged = _compare(reference, kinds, got, dtype, override, intervals, scale_floor, extra, raised, undecided)
    if factorized is not None and judged.worst is not None and judged.worst[0] in rows:
        judged.worst_factorized = float(factorized[0][int(np.searchsorted(rows, judged.worst[0])), judged.worst[1]])
    if factorized is not None and judged.undecided:
        judged.undecided_condition = float(np.max(np.where(undecided[rows] > 0, factorized[0], 0.0)))
    return judged


def singular_in(dtype: str, condition):
    """Whether a matrix with this condition number is singular in ``dtype`` (u·cond(A) ≥ 1):
    its factorization decides nothing, and no allowance is granted for it."""
    return EPS[dtype] / 2 * condition >= 1


def factorization_allowance(condition: np.ndarray, size: np.ndarray, magnitude: np.ndarray,
                            dtype: str) -> tuple[np.ndarray, np.ndarray]:
    """What torch's LU-based kernels may err by, for entries (rows, n) whose inputs feed a
    matrix it factorizes with ``condition`` (0: none does): FACTORIZATION·u·cond(A)·M, M the
    size of what reaches the entry through the factorizing ops (``size``, from torch's own
    derivatives along that path), never above the largest exact |R| (``magnitude``) among the
    point's entries that go through one (see the module docstring). Returns (the allowance, the
    error up to which an entry beyond the decidable bound, FACTORIZATION·u·cond(A) > √eps, is
    not compared: min(FACTORIZATION·u·cond(A), 1)·M, 0 elsewhere; a larger error still fails).
    Nothing at a matrix singular in the dtype (u·cond(A) ≥ 1: its LU decides nothing, and torch
    does not solve with it there)."""
    u = EPS[dtype] / 2
    through = condition > 0
    row_max = np.where(through, magnitude, 0.0).max(axis=1, initial=0.0)
    scale = np.minimum(np.where(np.isfinite(size), size, 0.0), row_max[:, None])
    share = np.where(through & ~singular_in(dtype, condition), FACTORIZATION * u * condition, 0.0)
    beyond = share > np.sqrt(EPS[dtype])
    return np.where(beyond, 0.0, share) * scale, np.where(beyond, np.minimum(share, 1.0) * scale, 0.0)


def _compare(reference: np.ndarray, kinds: np.ndarray, got: np.ndarray, dtype: str,
             override: Tolerance | None = None, intervals: np.ndarray | None = None,
             scale_floor: float = 0.0, extra: np.ndarray | None = None,
             raised: np.ndarray | None = None, undecided: np.ndarray | None = None) -> Comparison:
    """Compare block by block of rows (points), with S taken over all rows first, so that
    the result is the one a single pass would give; see :func:`compare_rows`. When every
    exact value is finite and in the dtype's range, torch's are all finite and no point is
    at a kink — nearly always — :func:`_compare_plain` gives the same comparison in a few
    passes over reused buffers."""
    if extra is None and _plain(reference, kinds, got, dtype, override, intervals):
        return _compare_plain(reference, got, dtype, override, scale_floor)
    rows = max(1, BLOCK_CELLS // max(reference.shape[1] if reference.ndim == 2 else 1, 1))
    if reference.shape[0] <= rows:
        return compare_rows(reference, kinds, got, dtype, override, intervals, scale_floor, extra, raised, undecided)
    in_range = (kinds == FINITE) & (np.abs(reference) <= MAX[dtype])
    scale = max(float(np.abs(np.where(in_range, reference, 0.0)).max()), scale_floor)
    parts = [(s, compare_rows(reference[s:s + rows], kinds[s:s + rows], got[s:s + rows], dtype, override,
                              None if intervals is None else intervals[s:s + rows], scale,
                              None if extra is None else extra[s:s + rows],
                              None if raised is None else raised[s:s + rows],
                              None if undecided is None else undecided[s:s + rows]))
             for s in range(0, reference.shape[0], rows)]
    counts: dict[str, int] = {}
    examples: dict[str, list[tuple[int, int]]] = {}
    for s, c in parts:
        for k, v in c.counts.items():
            counts[k] = counts.get(k, 0) + v
        for k, v in c.examples.items():
            examples.setdefault(k, []).extend((i + s, j) for i, j in v)
    examples = {k: v[:5] for k, v in examples.items()}
    done = [(s, c) for s, c in parts if c.worst_ratio is not None]

    def top(attr):
        return max((getattr(c, attr) for _, c in done), default=None)
    worst = worst_ratio = None
    best = None
    if done:
        s, best = max(done, key=lambda sc: sc[1].worst_ratio)
        worst_ratio = best.worst_ratio
        worst = (best.worst[0] + s, best.worst[1])
    if "unstable" in examples:  # NaN or ±inf where the exact value is finite: no tolerance covers it
        worst, worst_ratio = examples["unstable"][0], float("inf")
    accepts = [c.accept for _, c in parts if c.accept is not None]
    return Comparison(np.concatenate([c.point_class for _, c in parts]), counts, parts[0][1].policy,
                      sum(c.compared for _, c in parts), top("max_abs"), top("max_rel"), top("max_ulp"),
                      worst, worst_ratio, examples,
                      worst_allowed=best.worst_allowed if best else None,
                      worst_default=best.worst_default if best else None,
                      worst_conditioning=best.worst_conditioning if best else None,
                      accept=(accepts[0][0], max(a[1] for a in accepts)) if accepts else None,
                      undecided=sum(c.undecided for _, c in parts))


def _plain(reference, kinds, got, dtype, override, intervals) -> bool:
    """Only passes and fails are possible: no kink, every exact value a finite number within
    the dtype's range, every torch value finite, and a tolerance that is never zero."""
    if not plain_reference(reference, kinds, dtype, override, intervals):
        return False
    with np.errstate(invalid="ignore"):
        # max and min propagate NaN, so finite extremes mean every value is finite
        lo, hi = float(got.min()), float(got.max())
    return bool(np.isfinite(lo) and np.isfinite(hi))


def _compare_plain(reference: np.ndarray, got: np.ndarray, dtype: str, override: Tolerance | None,
                   scale_floor: float) -> Comparison:
    """:func:`compare_rows` for the plain case (see :func:`_plain`): the same policy, classes
    and maxima, computed a block of rows at a time in buffers allocated once (fresh pages
    cost more than the arithmetic on them)."""
    stream = PlainStream(reference, dtype, override, scale_floor)
    for s in range(0, reference.shape[0], stream.rows):
        stream.add(s, got[s:s + stream.rows])
    return stream.result()


def plain_reference(reference: np.ndarray, kinds: np.ndarray, dtype: str, override: Tolerance | None,
                    intervals: np.ndarray | None, extremes: tuple[float, float] | None = None) -> bool:
    """The exact side of :func:`_plain`: whether the comparison is plain as long as torch's
    values are all finite (known before torch computes anything). ``extremes``: the
    reference's (min, max), when the caller keeps them (one pass over 131 MB less)."""
    if reference.ndim != 2 or reference.size == 0 or kinds.any():
        return False
    if intervals is not None and not np.isnan(intervals).all():
        return False
    if override is not None and override.atol <= 0:
        return False
    rlo, rhi = extremes or (float(reference.min()), float(reference.max()))
    return bool(np.isfinite(rlo) and np.isfinite(rhi) and max(-rlo, rhi) <= MAX[dtype])


class PlainStream:
    """:func:`_compare_plain` fed torch's values a block of rows at a time, as they are
    computed (:meth:`add`), so that a big Jacobian never needs to be held whole. The result
    is the same, field by field, whatever the blocks.

    :meth:`add` returns False for a block that is not plain (a NaN or ±inf from torch): the
    caller then compares the whole result the general way (:func:`compare`)."""

    def __init__(self, reference: np.ndarray, dtype: str, override: Tolerance | None, scale_floor: float,
                 extremes: tuple[float, float] | None = None):
        self.reference, self.dtype = reference, dtype
        p, n = reference.shape
        self.n = n
        lo, hi = extremes or (float(reference.min()), float(reference.max()))
        scale = max(-lo, hi, scale_floor)
        self.policy = policy_for(dtype, scale, override)
        self.rows = max(1, min(p, BLOCK_CELLS // n))
        self.failed = np.zeros(p, dtype=bool)
        self.point_ratio = np.zeros(p, dtype=np.float32)  # for the report's plots
        self.max_abs = self.max_rel = self.max_ulp = self.worst_ratio = -1.0
        self.worst, self.worst_got = (0, 0), float("nan")
        self.examples: list[tuple[int, int]] = []
        self._buffers: tuple | None = None

    def _buffers_for(self, k: int) -> tuple:
        if self._buffers is None or self._buffers[0].shape[0] < k:
            rows = max(k, self.rows)
            self._buffers = (np.empty((rows, self.n)), np.empty((rows, self.n)), np.empty((rows, self.n)),
                             np.empty((rows, self.n), dtype=np.int32))
        return tuple(b[:k] for b in self._buffers)

    def add(self, s: int, g: np.ndarray) -> bool:
        """torch's values for rows s, s+1, … (float64, or float32 for float32)."""
        with np.errstate(invalid="ignore"):
            if not (np.isfinite(g.min()) and np.isfinite(g.max())):
                return False
        policy, dtype, n = self.policy, self.dtype, self.n
        k = len(g)
        r = self.reference[s:s + k]
        e, t, mant, expo = self._buffers_for(k)
        smallest = int(np.log2(TINY[dtype]))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            np.subtract(g, r, out=e)
            np.abs(e, out=e)
            self.max_abs = max(self.max_abs, float(e.max()))
            np.abs(r, out=t)                                 # |R|
            np.divide(e, t, out=mant)                        # relative error (0/0 = NaN: ignored)
            rel = float(np.fmax.reduce(mant, axis=None))
            if np.isnan(rel):  # every entry 0/0
                rel = 0.0
            self.max_rel = max(self.max_rel, rel)
            t *= policy.rtol
            t += policy.atol                                 # allowed
            np.divide(e, t, out=t)                           # ratio
            at = int(np.argmax(t))
            if t.flat[at] > self.worst_ratio:
                self.worst_ratio, self.worst = float(t.flat[at]), (s + at // n, at % n)
                self.worst_got = float(g.flat[at])
            self.point_ratio[s:s + k] = t.max(axis=1)
            bad = (t > 1).any(axis=1)
            self.failed[s:s + k] = bad
            if len(self.examples) < 5 and bad.any():
                for i in np.flatnonzero(bad):
                    self.examples.extend((s + int(i), int(j)) for j in np.flatnonzero(t[i] > 1))
                    if len(self.examples) >= 5:
                        break
                self.examples = self.examples[:5]
            np.frexp(r, out=(mant, expo))                    # ULPs: the error over the spacing at R
            expo -= 1 + MANTISSA[dtype]
            np.maximum(expo, smallest - MANTISSA[dtype], out=expo)
            expo[r == 0] = smallest - MANTISSA[dtype]
            np.negative(expo, out=expo)
            np.ldexp(e, expo, out=t)
            self.max_ulp = max(self.max_ulp, float(t.max()))
        return True

    def result(self) -> Comparison:
        failed = self.failed
        cls = np.where(failed, _RANK["fail"], _RANK["pass"]).astype(np.int8)
        point_class = np.array([CLASSES[c] for c in cls], dtype=object)
        counts = {c: int((cls == _RANK[c]).sum()) for c in ("pass", "fail") if (cls == _RANK[c]).any()}
        examples = {"fail": list(self.examples)} if failed.any() else {}
        return Comparison(point_class, counts, self.policy, len(failed), self.max_abs, self.max_rel,
                          self.max_ulp, self.worst, self.worst_ratio, examples, self.worst_got,
                          point_ratio=self.point_ratio)


# Long on purpose (about 90 lines): the policy's one vectorised pass, which classes every entry
# (pass, kink, overflow, undefined, singular, unstable, fail) in an order the classes depend on;
# split, each piece would recompute the masks the next one reads.
def compare_rows(reference: np.ndarray, kinds: np.ndarray, got: np.ndarray, dtype: str,
                 override: Tolerance | None = None, intervals: np.ndarray | None = None,
                 scale_floor: float = 0.0, extra: np.ndarray | None = None,
                 raised: np.ndarray | None = None, undecided: np.ndarray | None = None) -> Comparison:
    """Compare torch's values ``got`` with the exact ``reference`` (both (P, n) float64;
    ``kinds`` gives FINITE/POS_INF/NEG_INF/UNDEFINED for each exact value).

    ``intervals`` (P, n, 2), NaN where unused, marks entries at a kink: there any value
    between the one-sided limits is right, so the reference becomes the nearest point of
    that interval and a passing entry is classed ``kink``. ``scale_floor`` is the size of the
    exact values over a grid of the domain: S is never taken smaller than that, so that a
    handful of samples that miss the largest derivative do not shrink the tolerance."""
    at_kink = at_limit = np.zeros(reference.shape, dtype=bool)
    if intervals is not None:
        at_limit = ~np.isnan(intervals[..., 0]) & ~np.isnan(intervals[..., 1])
        lo = np.fmin(intervals[..., 0], intervals[..., 1])
        hi = np.fmax(intervals[..., 0], intervals[..., 1])
        at_kink = at_limit & (hi > lo)
        reference = np.where(at_limit, np.clip(np.nan_to_num(got), lo, hi), reference)
        kinds = np.where(at_limit, FINITE, kinds)
    # An exact value beyond the dtype's range (even beyond float64's) is "finite" but cannot
    # be compared as a number: torch's correct answer there is the infinity of its sign.
    in_range = (kinds == FINITE) & (np.abs(reference) <= MAX[dtype])
    beyond = (kinds == FINITE) & ~in_range
    finite_ref = in_range
    ref = np.where(finite_ref, reference, 0.0)
    scale = max(float(np.abs(ref).max()) if ref.size else 0.0, scale_floor)
    policy = policy_for(dtype, scale, override)

    got_finite = np.isfinite(got)
    with np.errstate(invalid="ignore", over="ignore"):
        err = np.where(finite_ref & got_finite, np.abs(got - ref), 0.0)
        allowed = policy.rtol * np.abs(ref) + policy.atol
        if extra is not None:
            allowed = np.maximum(allowed, extra)
        ratio = np.where(allowed > 0, err / np.where(allowed > 0, allowed, 1.0), np.where(err > 0, np.inf, 0.0))

    cls = np.full(ref.shape, _RANK["pass"], dtype=np.int8)
    cls[finite_ref & got_finite & (ratio > 1)] = _RANK["fail"]
    overflow_ok = beyond & np.isinf(got) & (np.sign(got) == np.sign(reference))
    cls[beyond & ~overflow_ok] = _RANK["fail"]
    cls[overflow_ok] = _RANK["overflow"]
    cls[finite_ref & ~got_finite] = _RANK["unstable"]
    # NaN or ±inf where the exact limit is finite (a removable singularity, a kink): the
    # NaN-gradient bug itself, a failure and not an instability region to map
    cls[at_limit & finite_ref & ~got_finite] = _RANK["fail"]
    cls[at_kink & (cls == _RANK["pass"])] = _RANK["kink"]
    n_undecided = 0
    not_decided = np.zeros(ref.shape, dtype=bool)
    if undecided is not None:  # beyond what a factorized matrix's rounding lets us decide: not compared
        # only an error that rounding there could make; a NaN, or a larger error, still fails
        not_decided = (undecided > 0) & (cls == _RANK["fail"]) & got_finite & (err <= undecided)
        cls[not_decided] = _RANK["singular"]
        n_undecided = int(not_decided.any(axis=1).sum())
    cls[(kinds == POS_INF) | (kinds == NEG_INF)] = _RANK["singular"]
    cls[kinds == UNDEFINED] = _RANK["undefined"]
    at_raised = np.zeros(ref.shape, dtype=bool)
    if raised is not None and raised.any():  # torch raised there: an error unless undefined there too
        at_raised = raised[:, None] & (kinds == FINITE)
        cls[at_raised] = _RANK["raised"]

    per_point = cls.max(axis=1) if cls.size else np.zeros(len(got), dtype=np.int8)
    point_class = np.array([CLASSES[c] for c in per_point], dtype=object)
    counts = {c: int((per_point == _RANK[c]).sum()) for c in CLASSES if (per_point == _RANK[c]).any()}
    examples = {CLASSES[c]: [tuple(int(i) for i in ix) for ix in np.argwhere(cls == c)[:5]]
                for c in range(len(CLASSES)) if c != _RANK["pass"] and (cls == c).any()}

    compared_mask = finite_ref & got_finite & ~not_decided
    if compared_mask.any():
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            rel = np.where(ref != 0, err / np.abs(ref), np.where(err > 0, np.inf, 0.0))
            ulps = err / ulp(ref, dtype)
        max_abs = float(err[compared_mask].max())
        max_rel = float(rel[compared_mask].max())
        max_ulp = float(ulps[compared_mask].max())
        masked = np.where(compared_mask, ratio, -1.0)
        worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(masked)), masked.shape))
        worst_ratio = float(masked[worst])
        worst_allowed = float(allowed[worst])
        worst_default = float(policy.rtol * abs(ref[worst]) + policy.atol)
        worst_conditioning = float(extra[worst]) if extra is not None else None
    else:
        max_abs = max_rel = max_ulp = worst_ratio = worst_allowed = worst_conditioning = worst_default = None
        worst = None
    accept = None
    if extra is not None and (cls == _RANK["fail"]).any():
        # a tolerance: line that accepts every compared point: the default rtol and, as atol,
        # the largest error beyond it (rounded up to two digits)
        with np.errstate(invalid="ignore"):
            need = np.where(compared_mask, err - policy.rtol * np.abs(ref), 0.0)
        accept = (policy.rtol, _round_up(float(need.max())))
    # an unstable point is the worst one to show, and a NaN at a limit before it
    if "unstable" in examples:  # NaN or ±inf where the exact value is finite: no tolerance covers it
        worst, worst_ratio = examples["unstable"][0], float("inf")
    nan_at_limit = np.argwhere(at_limit & finite_ref & ~got_finite & ~at_raised)
    if len(nan_at_limit):
        worst, worst_ratio = tuple(int(v) for v in nan_at_limit[0]), float("inf")
    return Comparison(point_class, counts, policy, int(compared_mask.any(axis=1).sum()) if got.size else 0,
                      max_abs, max_rel, max_ulp, worst, worst_ratio, examples,
                      worst_allowed=worst_allowed, worst_conditioning=worst_conditioning, accept=accept,
                      worst_default=worst_default, undecided=n_undecided)


def _round_up(x: float) -> float:
    """``x`` rounded up to two significant digits."""
    if not np.isfinite(x) or x <= 0:
        return x
    e = 10.0 ** (np.floor(np.log10(x)) - 1)
    return float(np.ceil(x / e * (1 - 1e-12)) * e)


def status_of(counts: dict[str, int]) -> str:
    """The result status implied by its point counts."""
    if counts.get("raised"):
        return "error"
    if counts.get("fail"):
        return "fail"
    if counts.get("unstable"):
        return "unstable"
    if counts.get("singular") or counts.get("undefined"):
        return "singular"
    if counts.get("kink"):
        return "kink"
    return "pass"


def errors_at(reference: float, got: float, dtype: str) -> tuple[float, float, float]:
    """(absolute, relative, ULP) error of one value."""
    a = abs(got - reference)
    r = a / abs(reference) if reference != 0 else (float("inf") if a > 0 else 0.0)
    u = a / float(ulp(np.array([reference]), dtype)[0])
    return a, r, u
