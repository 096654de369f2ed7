"""``check_case``: the pipeline for one case, as the CLI, the pytest plugin and the API call it.

compile → for each dtype: draw points → exact reference → torch → compare → Result.
"""

from __future__ import annotations

import dataclasses

import time
from dataclasses import dataclass, field, replace
from functools import cached_property

import mpmath
import numpy as np
import sympy as sp

from . import compare as cmp
from .symbolic.ops import jump_guard
from .autograd import CannotDifferentiate, MissingKernel, TorchRaised, Torchside, Unsupported, dynamo_deferred
from .case import Case
from .diagnostics import limits as lim
from .diagnostics.kinks import SidedEvaluator, convention, find_kinks
from .errors import CaseFileError
from .points import SIXTEEN_BIT, PointSet, draw, validate_points
from .diagnostics.regions import describe_region
from .diagnostics.search import hunt
from .reference import Evaluator, program_of
from .results import (ERROR, FAIL, FAILING, NOT_DIFFERENTIABLE, SKIPPED, UNSUPPORTED, XFAIL, XPASS, CaseReport, Details,
                      KinkFinding, LimitFinding, PointProfile, Result, SearchHit, SingularPoint, WorstPoint)
from .claims import check_claims
from .symbolic import CompiledCase, Target, compile_case
from .symbolic.cache import DerivationCache

MAX_FORMULA = 400  # characters of a formula shown in a failure
MAX_LATEX_NODES = 400  # formulas larger than this are not printed as LaTeX in reports


@dataclass
class CheckOptions:
    """Run-wide choices that override a case's own."""

    dtypes: tuple[str, ...] = ()
    seed: int | None = None
    device: str = "cpu"
    search: bool = False  # hunt for failing points with Hypothesis (diffcheck.search)
    cache: DerivationCache | None = None  # where derivations are kept across runs (None: nowhere)
    allow_imports: bool = False  # the project's opt-in to `imports:` (they run as code)


@dataclass
class _Reference:
    values: np.ndarray
    kinds: np.ndarray

    @cached_property
    def extremes(self) -> tuple[float, float]:
        """(min, max) of the values: read by every mode's comparison, computed once."""
        return float(self.values.min()), float(self.values.max())


@dataclass
class _Context:
    compiled: CompiledCase
    dtype: str
    points: PointSet
    torchside: Torchside
    options: CheckOptions = field(default_factory=CheckOptions)
    refs: dict[str, _Reference] = field(default_factory=dict)
    sided: dict[str, SidedEvaluator] = field(default_factory=dict)
    special: dict[str, "_Special"] = field(default_factory=dict)
    finders: dict[tuple, lim.LimitFinder] = field(default_factory=dict)
    projections: dict = field(default_factory=dict)
    jump_guards: dict[tuple, Evaluator | None] = field(default_factory=dict)  # entry -> its jump guards
    grid: np.ndarray | None = None  # the evaluation matrix of the grid (check._grid_matrix)

    def sided_evaluator(self, target: Target) -> SidedEvaluator:
        key = f"{target.label}:{target.wrt}"
        if key not in self.sided:
            self.sided[key] = SidedEvaluator(target.exprs, self.compiled.symbols)
        return self.sided[key]

    @property
    def moving_columns(self) -> list[int]:
        """Columns of the evaluation matrix that hold the variables' elements."""
        return list(range(self.points.matrix().shape[1]))


def check_case(case: Case, options: CheckOptions | None = None) -> CaseReport:
    """Check one case and return its report. A case-file problem raises CaseFileError;
    everything torch does wrong becomes a Result."""
    options = options or CheckOptions()
    if options.allow_imports and not case.allow_imports:
        case = dataclasses.replace(case, allow_imports=True)
    start = time.perf_counter()
    compiled = prepare(case, options.cache)
    report = check_part(case, None, options, compiled)
    for part in case_parts(case, options):
        report.results.extend(check_part(case, part, options, compiled).results)
    finish_case(case, report)
    report.seconds = time.perf_counter() - start
    return report


# The parts of a case, which ``diffcheck run -j N`` checks in separate workers: one per dtype,
# and the claims. ``check_case`` is their sequence; a run in workers merges the parts' reports
# in the same order (runner.merge_parts) and finishes the case as check_case does.

CLAIMS = "claims"


def case_parts(case: Case, options: CheckOptions) -> list[str]:
    """The parts of ``case`` in report order: its dtypes, then its claims if it makes any."""
    return list(options.dtypes or case.dtypes) + ([CLAIMS] if case.expect else [])


def prepare(case: Case, cache: DerivationCache | None = None) -> CompiledCase:
    """The case compiled, its explicit points checked (a CaseFileError if they are wrong);
    its derivations kept in ``cache`` when one is given."""
    validate_points(case)
    compiled = compile_case(case)
    compiled.cache = cache
    return compiled


def check_part(case: Case, part: str | None, options: CheckOptions,
               compiled: CompiledCase | None = None) -> CaseReport:
    """The report of one part of ``case``: a dtype's results, or the claims' (``CLAIMS``); with
    ``part`` None, only the case's formulas (its LaTeX, which derives every checked
    derivative). xfail and expected refusals are applied by :func:`finish_case`."""
    start = time.perf_counter()
    compiled = compiled or prepare(case, options.cache)
    report = CaseReport.for_case(case, options.seed)
    if part is None:
        report.expr_latex = latex_of(compiled.output, case.expr)
        report.derivatives_latex = derivative_latex(compiled)
    elif part == CLAIMS:
        report.results = check_claims(compiled)
    else:
        report.results = check_dtype(compiled, part, options)
    report.seconds = time.perf_counter() - start
    return report


def finish_case(case: Case, report: CaseReport) -> CaseReport:
    """What needs all of a case's results: expected refusals, then xfail (each result is
    replaced by a new one; none is changed in place)."""
    report.results = apply_xfail(case, expect_not_differentiable(case, report.results))
    return report


def check_dtype(compiled: CompiledCase, dtype: str, options: CheckOptions) -> list[Result]:
    case = compiled.case
    if case.samples == "all" and dtype not in SIXTEEN_BIT:
        raise CaseFileError(f"`samples: all` enumerates 16-bit dtypes only, and this run asks for {dtype}",
                            case.where("samples"), "leave out --dtype, or give the case a number of samples",
                            case=case.name)
    points = draw(case, dtype, options.seed)
    derivative_exprs = (e for check in compiled.checks if check.kind != "intermediates"
                        for t in compiled.targets(check) for e in t.exprs)  # lazy: read only for kinks
    points = points.with_kinks(find_kinks(compiled, derivative_exprs, dtype), dtype)
    ctx = _Context(compiled, dtype, points, Torchside(compiled, dtype, points, options.device), options)
    with dynamo_deferred():  # forward mode of x * 3 would import torch._dynamo: 1 s for nothing
        results = [_run(ctx, compiled.value_target(), "value", None)]
        for check in compiled.checks:
            for target in compiled.targets(check):
                label = target.label if target.wrt is None else f"intermediates:{target.wrt}"
                modes = ("backward",) if target.label == "intermediates" else case.modes
                for mode in modes:
                    results.append(_run(ctx, target, label, mode))
    return results


def _with_constants(ctx: _Context, variables: np.ndarray) -> np.ndarray:
    """The evaluation matrix: the variables' elements (rows = points), then the symbolic
    constants as the dtype under test holds them, the same in every row."""
    consts = [np.broadcast_to(_rounded(v, ctx.dtype).reshape(-1), (len(variables), v.size))
              for v in ctx.compiled.symbolic_constants]
    return np.concatenate([variables] + consts, axis=1) if consts else variables


def _reference(ctx: _Context, target: Target) -> _Reference:
    key = f"{target.label}:{target.wrt}"
    if key not in ctx.refs:
        values, kinds = Evaluator(target.exprs, ctx.compiled.symbols)(_with_constants(ctx, ctx.points.matrix()))
        ctx.refs[key] = _Reference(values, kinds)
    return ctx.refs[key]


GRID = 64


def _scale_floor(ctx: _Context, target: Target) -> float:
    """S's floor: the size of the exact values on the grid. A derivative that vanishes
    identically (the gradient of sum(softmax(x))) has no size of its own; torch's result is
    then rounding of terms the size of the function's value, so that is the scale."""
    scale = _grid_scale(ctx, target)
    if scale == 0.0 and target.label != "value":
        scale = _grid_scale(ctx, ctx.compiled.value_target())
    return scale


def _grid(ctx: _Context) -> np.ndarray:
    """A fixed grid of the domain: 64 points, each element with 8 significant bits (so that
    float64, float32 and bfloat16 all hold it exactly, and usually float16 too: the dtypes
    of one case then share one grid and one evaluation), then rounded to the dtype."""
    case = ctx.compiled.case
    if len(case.variables) == 1 and not case.variables[0].shape:
        grid = [np.linspace(*case.variables[0].domain, GRID)]
    else:
        rng = np.random.default_rng(12345)
        grid = [rng.uniform(*v.domain, size=(GRID, int(np.prod(v.shape, dtype=int)))) for v in case.variables]
    coarse = np.concatenate([_rounded(g.reshape(GRID, -1), "bfloat16") for g in grid], axis=1)
    return _rounded(coarse, ctx.dtype)


def _grid_scale(ctx: _Context, target: Target) -> float:
    """The largest finite |exact value| of ``target`` over the grid (to 6 digits: a size)."""
    if ctx.grid is None:  # once per dtype: every target of the case reads the same grid
        ctx.grid = _with_constants(ctx, _grid(ctx))
    matrix = ctx.grid
    key = (target.label, target.wrt, matrix.tobytes())
    scales = ctx.compiled.grid_scales
    if key not in scales:
        scales[key] = Evaluator(target.exprs, ctx.compiled.symbols).magnitude(matrix)
    return scales[key]


def _rounded(values: np.ndarray, dtype: str) -> np.ndarray:
    from .points import round_to
    return round_to(values, dtype)


def _run(ctx: _Context, target: Target, label: str, mode: str | None) -> Result:
    case = ctx.compiled.case
    start = time.perf_counter()

    def stopped(status, message: str) -> Result:
        notes = tuple(ctx.torchside.notes)  # how torch was run before it stopped
        ctx.torchside.notes.clear()
        return Result(case=case.name, file=case.file, check=label, mode=mode, dtype=ctx.dtype, status=status,
                      message=message, details=Details(notes=notes), seconds=time.perf_counter() - start)

    if ctx.points.count == 0:
        return stopped(SKIPPED, "no points to check (samples: 0 and no points)")
    ctx.torchside.notes.clear()  # each result carries its own notes only
    ref = _reference(ctx, target)  # first: its temporaries are gone before torch's result arrives
    override = case.tolerance.get(ctx.dtype, case.tolerance.get("*"))
    special = _special(ctx, target, ref)
    intervals = special.intervals
    raw = ref  # SymPy's own values: where torch raises, a limit of them is not what torch was asked
    if special.kinds is not None:
        ref = _Reference(ref.values, special.kinds)
    try:
        if (mode is not None and ctx.torchside.in_blocks(target)
                and cmp.plain_reference(ref.values, ref.kinds, ctx.dtype, override, intervals, ref.extremes)):
            streamed = _streamed(ctx, target, mode, ref, override)
            # a failure is judged again with the conditioning allowance: that needs torch's whole result
            if streamed is not None and (override is not None or not streamed.counts.get("fail")):
                return _finish(ctx, target, label, mode, streamed, ref, None, start, Details())
        got = ctx.torchside.value(target) if mode is None else ctx.torchside.derivative(target, mode)
    except CannotDifferentiate as err:
        return stopped(NOT_DIFFERENTIABLE, f"torch cannot differentiate this: {err}")
    except MissingKernel as err:
        return stopped(UNSUPPORTED, str(err))
    except TorchRaised as err:
        if not _undefined_wherever_raised(ctx, raw):
            return stopped(ERROR, f"torch raised: {err}")
        got = np.full(ref.values.shape, np.nan)  # torch raised at every point, and so is the exact value undefined
    except Unsupported as err:
        if "modes" in case.positions:  # the case asks for this mode by name: an error
            return stopped(ERROR, f"`modes:` asks for {mode} mode, and torch cannot run it here: {err}")
        return stopped(UNSUPPORTED, f"{mode} mode not checked: {err} (list `modes:` to choose the modes)")
    raised = _raised_rows(ctx)
    if raised is not None:  # torch raised there: undefined where SymPy's value is, else an error
        ref = _Reference(ref.values, np.where(raised[:, None], raw.kinds, ref.kinds))
        if intervals is not None:
            intervals = np.where(raised[:, None, None], np.nan, intervals)
    comparison = cmp.compare(ref.values, ref.kinds, got, ctx.dtype, override, intervals,
                             scale_floor=0.0 if override else _scale_floor(ctx, target),
                             conditioning=_conditioning(ctx, target), raised=raised)
    details = Details(kinks=_kink_details(ctx, target, intervals, got, comparison) if intervals is not None else (),
                      singular=_singular_details(ctx, target, ref, special, got),
                      limits=_limit_details(ctx, target, special, got, comparison))
    return _finish(ctx, target, label, mode, comparison, ref, got, start, details)


def _raised_rows(ctx: _Context) -> np.ndarray | None:
    """(P,) the points where torch raised while the others computed (:attr:`Torchside.raised`)."""
    if not ctx.torchside.raised:
        return None
    rows = np.zeros(ctx.points.count, dtype=bool)
    rows[list(ctx.torchside.raised)] = True
    return rows


def _undefined_wherever_raised(ctx: _Context, ref: _Reference) -> bool:
    """torch raised at every point: whether the exact value is infinite or undefined at each of
    them too (``inv`` at singular matrices only). Then they are singular points, not an error."""
    raised = ctx.torchside.raised
    return len(raised) == ctx.points.count > 0 and bool((ref.kinds != cmp.FINITE).all())


def _raised_text(ctx: _Context, comparison: cmp.Comparison) -> str | None:
    """The message part for the points where torch raised: an error where the exact value is
    finite (the first such point with torch's message), else said beside the undefined points."""
    raised = ctx.torchside.raised
    if not raised:
        return None
    rows = [int(i) for i in np.flatnonzero(comparison.point_class == "raised")]
    if rows:
        at = ", ".join(f"{k} = {v}" for k, v in ctx.points.point(rows[0]).items())
        return (f"torch raised at {len(rows)} of {ctx.points.count} points where the exact value is finite "
                f"(at {at}: {raised[rows[0]]})")
    return (f"torch raised at {len(raised)} of {ctx.points.count} points, each where the exact value is "
            f"infinite or undefined too ({next(iter(raised.values()))})")


def _batching_bug(ctx: _Context, target: Target, mode: str, comparison: cmp.Comparison,
                  ref: _Reference, got: np.ndarray | None) -> str | None:
    """torch.func computes the points of a result as one batch (vmap). When its value at the
    worst point is wrong in the batch and right for that point alone, the batching is at
    fault (vmap of jacfwd over det in torch 2.13), not the code under test: say so."""
    i, j = comparison.worst
    if ctx.points.count < 2 or got is None or not np.isfinite(got[i, j]) or comparison.worst_allowed is None:
        return None
    part = ctx.torchside.alone(i)
    try:
        alone = float(part.derivative(target, mode)[0, j])
    except Exception:  # whatever torch does at one point, the batched verdict stands
        return None
    exact = float(ref.values[i, j])
    if not (np.isfinite(alone) and abs(alone - exact) <= comparison.worst_allowed):
        return None
    return (f"at the worst point torch.func gives {got[i, j]:.17g} in the batch of {ctx.points.count} points "
            f"and {alone:.17g} for that point alone, which agrees with the exact value: torch's batched "
            f"{mode} mode (vmap) is wrong here, not the function under test")


def _conditioning(ctx: _Context, target: Target):
    """The rounding scale K of ``target`` at some rows (compare.py), computed only when asked."""
    def scale(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        evaluator = Evaluator(target.exprs, ctx.compiled.symbols)
        return _rounding(ctx, target, evaluator, _with_constants(ctx, ctx.points.matrix()[rows]), ctx.torchside, rows)
    return scale


def _rounding(ctx: _Context, target: Target, evaluator: Evaluator, matrix: np.ndarray, side: Torchside | None,
              rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """What :func:`diffcheck.compare.compare` reads at a failing point (its ``conditioning``): the
    rounding scale K of the exact expression and of autograd's saved outputs, the smallest
    underflowing intermediate, and cond(A) of the matrices torch factorizes (``side`` at ``rows``).
    One function for a result and for ``--search``'s candidates, so that both are judged alike."""
    k = evaluator.rounding_scale(matrix)
    saved = ctx.compiled.saved_output_sensitivity(target) if target.label != "value" else None
    if saved is not None:  # torch's backward reads σ (σ' = σ(1 − σ)): one rounding of each σ counts too
        values, kinds = Evaluator(saved, ctx.compiled.symbols)(matrix)
        k = np.maximum(k, cmp.SAVED_OUTPUT_ROUNDINGS * np.where((kinds == cmp.FINITE) & np.isfinite(values),
                                                                values, 0.0))
    return (k, evaluator.smallest_underflow(matrix, cmp.TINY[ctx.dtype]),
            _factorized(side, target, rows) if side is not None else None)


def _factorized(side: Torchside, target: Target, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """For each entry of ``target`` at ``rows`` ((len(rows), n) each): cond(A) of the matrices
    torch's code factorizes (det, inv, solve, …) that depend on the inputs the entry
    differentiates by (0 where none does), and the size of what reaches the entry through those
    ops (:meth:`Torchside.factorization_condition`). None for a value or a third or higher
    derivative, or when no such matrix is there at the first row (most code: one call of the
    function, not one per row)."""
    order = {"gradient": 1, "jacobian": 1, "derivative1": 1, "hessian": 2, "derivative2": 2}.get(target.label)
    if not len(rows) or order is None:
        return None
    first = side.factorization_condition(rows[:1], order)
    if not first[0].any() or len(target.cols) != first[0].shape[1]:
        return None
    rest = side.factorization_condition(rows[1:], order)
    cond, size = (np.concatenate([a, b]) for a, b in zip(first, rest))

    def per_entry(per_input: np.ndarray) -> np.ndarray:
        across = np.tile(per_input, (1, len(target.rows)))  # entry (r, c) → its input c
        if order == 2 and target.label == "hessian":  # ∂²/∂r∂c: through A if either input feeds A
            return np.maximum(np.repeat(per_input, len(target.cols), axis=1), across)
        return across
    return per_entry(cond), per_entry(size)


def _streamed(ctx: _Context, target: Target, mode: str, ref: _Reference, override) -> cmp.Comparison | None:
    """The comparison of a big derivative made block by block as torch computes it, so that
    torch's whole result (131 MB for a 128-softmax Jacobian at 1000 points) is never held;
    None when torch returned a NaN or ±inf, which the general comparison must classify."""
    stream = cmp.PlainStream(ref.values, ctx.dtype, override, 0.0 if override else _scale_floor(ctx, target),
                             ref.extremes)
    done = ctx.torchside.derivative(target, mode, consume=stream.add)
    return stream.result() if done is True else None


def _finish(ctx: _Context, target: Target, label: str, mode: str | None, comparison: cmp.Comparison,
            ref: _Reference, got: np.ndarray | None, start: float, details: Details) -> Result:
    """The result, built once from its comparison. ``got`` is torch's whole result, None when
    it was compared block by block (only pass and fail were possible then)."""
    case = ctx.compiled.case
    if comparison.counts.get("unstable"):
        region = _unstable_region(ctx, target, mode, comparison)
        if region:
            details = replace(details, regions=(region,))
    status = cmp.status_of(comparison.counts)
    worst = None
    if comparison.worst is not None:
        i, j = comparison.worst
        g = float(got[i, j]) if got is not None else comparison.worst_got
        worst = _worst(ctx, target, ref, g, i, j)
    message = _message(comparison, ctx.points.count, details, ctx.dtype, _raised_text(ctx, comparison))
    if status == FAIL and mode in ("reverse", "forward") and comparison.worst is not None:
        alone = _batching_bug(ctx, target, mode, comparison, ref, got)
        if alone:
            message = f"{message}; {alone}"
    if ctx.options.search:
        hit = _search(ctx, target, mode, comparison)
        details = replace(details, search=hit)
        if hit.point is not None:
            status = status if status in FAILING else FAIL
            message = (f"{message}; --search found a failing point ({hit.stage}): "
                       f"pin it with `{hit.points_line}`")
    if ctx.torchside.notes:
        details = replace(details, notes=tuple(ctx.torchside.notes))
        ctx.torchside.notes.clear()
    return Result(case=case.name, file=case.file, check=label, mode=mode, dtype=ctx.dtype, status=status,
                  points=comparison.compared, max_abs_error=comparison.max_abs, max_rel_error=comparison.max_rel,
                  max_ulp_error=comparison.max_ulp, worst_point=worst, message=message, counts=comparison.counts,
                  tolerance=comparison.policy.describe(), details=details, ratio=comparison.worst_ratio,
                  seconds=time.perf_counter() - start, profile=_profile(ctx, comparison, ref, got))


def _profile(ctx: _Context, comparison: cmp.Comparison, ref: _Reference, got: np.ndarray | None) -> PointProfile:
    """The result point by point, for the report's plots: each point's worst error ÷
    allowed (NaN where no entry was compared), its class, and its value when the case has
    one scalar variable."""
    ratio = comparison.point_ratio
    if ratio is None and got is not None:
        policy = comparison.policy
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            finite = (ref.kinds == cmp.FINITE) & np.isfinite(got)
            allowed = policy.rtol * np.abs(ref.values) + policy.atol
            each = np.where(finite, np.abs(got - ref.values) / allowed, np.nan)
            ratio = np.full(each.shape[0], np.nan) if each.shape[1] == 0 else np.fmax.reduce(each, axis=1)
    if ratio is None:
        ratio = np.full(ctx.points.count, np.nan)
    classes = np.asarray(comparison.point_class)
    ratio = np.where(np.isin(classes, ("pass", "fail")), ratio, np.nan)  # a kink is judged by its limits
    case = ctx.compiled.case
    x = variable = domain = None
    if len(case.variables) == 1 and not case.variables[0].shape:
        variable, domain = case.variables[0].name, case.variables[0].domain
        x = np.asarray(ctx.points.values[variable], dtype=np.float64).reshape(-1)
    with np.errstate(over="ignore"):  # a ratio beyond float32 (a 1e83 error) is plotted as inf
        ratio = np.asarray(ratio, dtype=np.float32)
    return PointProfile(ratio=ratio, classes=classes,
                        x=x, variable=variable, domain=domain)


def _torch_at(ctx: _Context, target: Target, mode: str | None, values: dict[str, np.ndarray]) -> np.ndarray:
    """torch's values for ``target`` at the points ``values`` (name -> (k, *shape))."""
    return _torch_side_at(ctx, target, mode, values)[1]


def _torch_side_at(ctx: _Context, target: Target, mode: str | None,
                   values: dict[str, np.ndarray]) -> tuple[Torchside, np.ndarray]:
    """The torch side at the points ``values``, and its values for ``target`` there."""
    count = len(next(iter(values.values())))
    side = Torchside(ctx.compiled, ctx.dtype, PointSet(values, count, 0), ctx.options.device)
    return side, (side.value(target) if mode is None else side.derivative(target, mode))


def _unstable_region(ctx: _Context, target: Target, mode: str | None, comparison: cmp.Comparison) -> str | None:
    case = ctx.compiled.case
    if len(case.variables) != 1:
        return None
    name = case.variables[0].name
    unstable = np.flatnonzero(comparison.point_class == "unstable")
    stable = np.flatnonzero(comparison.point_class == "pass")
    if not len(unstable) or not len(stable):
        return None
    vals = ctx.points.values[name]
    u = vals[unstable[0]]
    s = vals[stable[np.argmin([np.abs(vals[i] - u).sum() for i in stable])]]

    def probe(point: dict[str, np.ndarray]) -> np.ndarray:
        try:
            return _torch_at(ctx, target, mode, {k: v[None] for k, v in point.items()})[0]
        except (CannotDifferentiate, TorchRaised):
            return np.array([np.nan])
    return describe_region(probe, name, s, u, case.variables[0].domain, ctx.dtype)


def _search(ctx: _Context, target: Target, mode: str | None, comparison: cmp.Comparison) -> SearchHit:
    """--search: hunt for a failing point, judged as the result itself was (:func:`_judge`)."""
    c = ctx.compiled
    evaluator = Evaluator(target.exprs, c.symbols)

    def failing(values: dict[str, np.ndarray]) -> np.ndarray:
        count = len(next(iter(values.values())))
        try:
            side, got = _torch_side_at(ctx, target, mode, values)
        except (CannotDifferentiate, TorchRaised):
            return np.ones(count, dtype=bool)
        matrix = _with_constants(ctx, np.concatenate([values[v.name].reshape(count, -1)
                                                      for v in c.case.variables], axis=1))
        return _judge(ctx, target, evaluator, matrix, got, side)

    found = hunt(c.case, ctx.dtype, failing, ctx.options.seed if ctx.options.seed is not None else c.case.seed)
    if found is None:
        return SearchHit()
    return SearchHit(point=found.point, points_line=found.yaml, stage=found.stage)


#: inputs of a candidate point at most this many are nudged to find a kink next to it
SEARCH_NUDGED_INPUTS = 64


def _judge(ctx: _Context, target: Target, evaluator: Evaluator, matrix: np.ndarray, got: np.ndarray,
           side: Torchside | None = None) -> np.ndarray:
    """Which candidate rows of ``--search`` fail, by the comparison's own policy
    (:func:`diffcheck.compare.compare`: the tolerance, the conditioning allowance, subnormal
    inputs), with a kink next to a point judged as a kink: where the exact values a few ULPs
    away on either side of an input differ, any torch value in their hull passes (SymPy's
    Heaviside(0) = 1/2 is only a convention). Without this, the search called correct code at
    its kinks, cancellations and underflows a failure."""
    ref, kinds = evaluator(matrix)
    override = ctx.compiled.case.tolerance.get(ctx.dtype, ctx.compiled.case.tolerance.get("*"))
    floor = 0.0 if override else _scale_floor(ctx, target)
    first = cmp.compare(ref, kinds, got, ctx.dtype, override, None, scale_floor=floor)
    bad = first.point_class == "fail"
    if not bad.any():
        return (first.point_class == "unstable") | bad
    rows = np.flatnonzero(bad)
    intervals = np.full(ref.shape + (2,), np.nan)
    n_inputs = sum(int(np.prod(v.shape)) for v in ctx.compiled.case.variables)
    if n_inputs <= SEARCH_NUDGED_INPUTS:
        step = 4 * cmp.EPS[ctx.dtype] * np.maximum(np.abs(matrix[rows, :n_inputs]), 1.0)
        lo, hi = ref[rows].copy(), ref[rows].copy()
        for j in range(n_inputs):
            for sign in (-1.0, 1.0):
                nudged = matrix[rows].copy()
                nudged[:, j] += sign * step[:, j]
                near, near_kinds = evaluator(nudged)
                near = np.where(near_kinds == cmp.FINITE, near, np.nan)
                lo, hi = np.fmin(lo, near), np.fmax(hi, near)
        # a smooth entry's hull is its value ± |f''|·step, within rounding; a kink's spans both sides
        intervals[rows] = np.where(np.isnan(lo)[..., None], np.nan, np.stack([lo, hi], axis=-1))

    def conditioning(at: np.ndarray):
        return _rounding(ctx, target, evaluator, matrix[at], side, at)
    judged = cmp.compare(ref, kinds, got, ctx.dtype, override, intervals, scale_floor=floor,
                         conditioning=None if override else conditioning)
    return np.isin(judged.point_class, ("fail", "unstable"))


def _matrix_row(ctx: _Context, i: int) -> np.ndarray:
    return _with_constants(ctx, ctx.points.matrix()[i:i + 1])[0]


@dataclass
class _Special:
    """The special points of one target (see :mod:`diffcheck.diagnostics.limits`):
    ``intervals`` (P, n, 2) the hull of the limits where they decide (NaN elsewhere),
    ``kinds`` the exact kinds with those entries made comparable (None: unchanged), and
    what each examined entry's limits said."""

    intervals: np.ndarray | None = None
    kinds: np.ndarray | None = None
    examined: dict[tuple[int, int], tuple[lim.EntryLimit, str]] = field(default_factory=dict)
    not_examined: int = 0


MAX_SPECIAL_ROWS = 64  # rows whose limits are examined, per target and dtype


def _special(ctx: _Context, target: Target, ref: _Reference) -> _Special:
    key = f"{target.label}:{target.wrt}"
    if key not in ctx.special:
        ctx.special[key] = _find_special(ctx, target, ref)
    return ctx.special[key]


def _program(ctx: _Context, target: Target):
    """The expression graph of ``target``, built once per compiled case (a derivative's
    ExprList holds its own; the value's list of expressions is converted once)."""
    key = f"{target.label}:{target.wrt}"
    programs = ctx.compiled.programs
    if key not in programs:
        programs[key] = program_of(target.exprs, ctx.compiled.symbols)
    return programs[key]


def _branch_arguments(ctx: _Context, target: Target) -> lim.BranchArguments:
    program = _program(ctx, target)
    derived = program.derived
    if "branch_arguments" not in derived:
        derived["branch_arguments"] = lim.branch_arguments(program, ctx.compiled.symbols, ctx.moving_columns)
    return derived["branch_arguments"]


def _near_boundary(ctx: _Context, args: lim.BranchArguments) -> tuple[np.ndarray, np.ndarray]:
    """(near, exact) (P, m) bool: branch argument k is within rounding of zero / exactly zero."""
    m = len(args.exprs)
    if args.evaluator is None:
        args.evaluator = Evaluator(args.exprs + args.scales, ctx.compiled.symbols)
    vals, kinds = args.evaluator(_with_constants(ctx, ctx.points.matrix()))
    a, scale = vals[:, :m], vals[:, m:]
    ok = (kinds[:, :m] == cmp.FINITE) & (kinds[:, m:] == cmp.FINITE)
    exact = ok & (a == 0)
    near = ok & (np.abs(a) <= lim.NEAR * cmp.EPS[ctx.dtype] * np.abs(scale))
    return near, exact


def _find_special(ctx: _Context, target: Target, ref: _Reference) -> _Special:
    """The limits of the entries that need one (undefined, infinite, on or near a branch
    boundary), examined point by point, at most MAX_SPECIAL_ROWS points."""
    out = _Special()
    p, n = ref.values.shape
    is_value = target.label == "value"
    args = _branch_arguments(ctx, target)
    todo, near_rows = _special_entries(ctx, ref, args, is_value)
    if not todo:
        return out
    rows = sorted(todo)
    out.not_examined = len(rows[MAX_SPECIAL_ROWS:])
    intervals = np.full((p, n, 2), np.nan)
    kinds = np.array(ref.kinds, dtype=np.int8, copy=True)
    symbols = ctx.compiled.symbols
    moving = ctx.moving_columns
    for i in rows[:MAX_SPECIAL_ROWS]:
        entries = sorted(todo[i])
        center = [mpmath.mpf(float(v)) for v in _matrix_row(ctx, i)]
        nm, em = near_rows.get(i, (0, 0))
        on_boundary = bool(em)
        if nm and not em:  # near a boundary, not on it: examine it at the boundary
            k = (nm & -nm).bit_length() - 1
            center = lim.project(args.exprs[k], symbols, center, moving, ctx.projections)
        involved = set()
        for k in range(len(args.exprs)):
            if (nm >> k) & 1:
                involved |= args.exprs[k].free_symbols
        for j in entries:
            if ref.kinds[i, j] != cmp.FINITE:
                involved |= target.exprs[j].free_symbols
        cols = [c for c in moving if symbols[c] in involved]
        per_direction = _limit_finder(ctx, target, entries).limits(center, lim.directions(moving, cols, seed=i))
        for e, j in enumerate(entries):
            finite = ref.kinds[i, j] == cmp.FINITE
            if not finite and _on_jump(ctx, target, i, j):  # no derivative, whatever its limits say
                out.examined[(i, j)] = (lim.EntryLimit("jump", limits=[d[e] for d in per_direction]),
                                        _kind_name(int(ref.kinds[i, j])))
                continue
            own = float(ref.values[i, j]) if finite and (is_value or not on_boundary) else None
            verdict = lim.decide([d[e] for d in per_direction], own)
            exact = _kind_name(int(ref.kinds[i, j])) if not finite else float(ref.values[i, j])
            out.examined[(i, j)] = (verdict, exact)
            if verdict.kind in ("limit", "kink"):
                intervals[i, j] = verdict.lo, verdict.hi
                kinds[i, j] = cmp.FINITE
            elif verdict.kind == "pole" and finite:
                signs = {np.sign(v) for v in verdict.limits if v is not None and np.isinf(v)}
                kinds[i, j] = (cmp.POS_INF if signs == {1.0} else cmp.NEG_INF if signs == {-1.0}
                               else cmp.UNDEFINED)
    if (~np.isnan(intervals[..., 0])).any():
        out.intervals = intervals
    if (kinds != ref.kinds).any():
        out.kinds = kinds
    return out


def _special_entries(ctx: _Context, ref: _Reference, args, is_value: bool
                     ) -> tuple[dict[int, set[int]], dict[int, tuple[int, int]]]:
    """row -> the entries of that row that need a limit (an exact value that is not finite,
    or a branch argument near zero); and row -> (mask of the near arguments, mask of the
    exact zeros) for the rows near a boundary."""
    todo: dict[int, set[int]] = {}
    for i, j in np.argwhere(ref.kinds != cmp.FINITE):
        todo.setdefault(int(i), set()).add(int(j))
    near_rows: dict[int, tuple[int, int]] = {}
    if args.exprs:
        near, exact = _near_boundary(ctx, args)
        for i in np.flatnonzero(near.any(axis=1)):
            nm = sum(1 << int(k) for k in np.flatnonzero(near[i]))
            em = sum(1 << int(k) for k in np.flatnonzero(exact[i]))
            near_rows[int(i)] = (nm, em)
            if is_value and em:  # a value exactly on a boundary is the branch's value there
                continue
            todo.setdefault(int(i), set()).update(j for j, mask in enumerate(args.masks) if mask & nm)
    return {i: js for i, js in todo.items() if js}, near_rows


def _limit_finder(ctx: _Context, target: Target, entries: list[int]) -> lim.LimitFinder:
    """The limit evaluator of these entries of the target, made once per case."""
    fkey = (target.label, target.wrt, tuple(entries))
    if fkey not in ctx.finders:
        program = _program(ctx, target)
        if target.label == "value":
            ctx.finders[fkey] = lim.LimitFinder(program, entries, None, (), ctx.compiled.symbols)
        else:
            value = _program(ctx, ctx.compiled.value_target())
            ctx.finders[fkey] = lim.LimitFinder(program, entries, value, _guards(ctx, target, entries),
                                                ctx.compiled.symbols)
    return ctx.finders[fkey]


def _on_jump(ctx: _Context, target: Target, i: int, j: int) -> bool:
    """Whether entry j is undefined at row i because the function jumps there (a jump guard
    of fmod or remainder, :mod:`diffcheck.symbolic.ops`, is undefined): a function has no
    derivative where it jumps, so a limit of its derivative is not the answer there."""
    key = (target.label, target.wrt, j)
    if key not in ctx.jump_guards:
        guards = sorted(target.exprs[j].atoms(jump_guard), key=sp.default_sort_key)
        ctx.jump_guards[key] = Evaluator(guards, ctx.compiled.symbols) if guards else None
    evaluator = ctx.jump_guards[key]
    if evaluator is None:
        return False
    _, kinds = evaluator(_with_constants(ctx, ctx.points.matrix()[i:i + 1]))
    return bool((kinds == cmp.UNDEFINED).any())


def _guards(ctx: _Context, target: Target, entries: list[int]) -> list[int]:
    """The outputs that must be defined along a direction for the limits of ``entries`` to
    count: the output of each entry's row when rows are outputs, else all."""
    if target.rows == ctx.compiled.output_names():
        return sorted({j // len(target.cols) for j in entries})
    return list(range(ctx.compiled.output.size))


def _kind_name(kind: int) -> str:
    return {cmp.POS_INF: "inf", cmp.NEG_INF: "-inf"}.get(kind, "undefined")


def _kink_details(ctx: _Context, target: Target, intervals: np.ndarray, got: np.ndarray,
                  comparison: cmp.Comparison) -> tuple[KinkFinding, ...]:
    case = ctx.compiled.case
    out = []
    for i, j in np.argwhere(intervals[..., 1] > intervals[..., 0]):
        left, right, g = float(intervals[i, j, 0]), float(intervals[i, j, 1]), float(got[i, j])
        allowed = comparison.policy.rtol * max(abs(left), abs(right)) + comparison.policy.atol
        out.append(KinkFinding(function=case.torch or case.expr, check=target.label,
                               point=ctx.points.point(int(i)), entry=target.entry(int(j)),
                               left=left, right=right, torch=g,
                               convention=convention(left, right, g, allowed) or KinkFinding.OUTSIDE))
    return tuple(out)


MAX_SINGULAR_ROWS = 10


def _limit_details(ctx: _Context, target: Target, special: _Special, got: np.ndarray,
                   comparison: cmp.Comparison) -> tuple[LimitFinding, ...]:
    """Entries whose reference is a limit that differs from SymPy's value at the point (an
    undefined or infinite value, or a branch's convention at a boundary)."""
    out = []
    for (i, j), (verdict, exact) in special.examined.items():
        if i in ctx.torchside.raised:  # torch raised there: no value to hold against a limit
            continue
        g = float(got[i, j])
        if verdict.kind != "limit" or (exact == verdict.lo and np.isfinite(g)):
            continue
        passed = bool(np.isfinite(g) and abs(g - verdict.lo) <= comparison.policy.rtol * abs(verdict.lo)
                      + comparison.policy.atol)
        out.append(LimitFinding(point=ctx.points.point(i), entry=target.entry(j), exact=exact,
                                limit=verdict.lo, torch=g, passed=passed))
    return tuple(out[:MAX_SINGULAR_ROWS * 4])


def _singular_details(ctx: _Context, target: Target, ref: _Reference, special: _Special,
                      got: np.ndarray) -> tuple[SingularPoint, ...]:
    """At points where the exact value is still infinite or undefined after its limits were
    examined: what torch returned, what the limits said, and whether torch's value is the
    infinity every direction agrees on."""
    rows = np.flatnonzero((ref.kinds != cmp.FINITE).any(axis=1))[:MAX_SINGULAR_ROWS]
    out = []
    for i in rows:
        for j in np.flatnonzero(ref.kinds[i] != cmp.FINITE):
            verdict, _ = special.examined.get((int(i), int(j)), (None, None))
            limits = [v for v in (verdict.limits if verdict else []) if v is not None]
            infinite = [v for v in limits if np.isinf(v)]
            limit = None
            if limits and len(infinite) == len(limits) and len({np.sign(v) for v in infinite}) == 1:
                limit = "+inf" if infinite[0] > 0 else "-inf"
            g = float(got[i, j])
            scalar = verdict is not None and len(verdict.limits) == 2
            left = verdict.limits[1] if scalar else None
            right = verdict.limits[0] if scalar else None
            matches = limit is not None and np.isinf(g) and (g > 0) == (limit == "+inf")
            out.append(SingularPoint(point=ctx.points.point(int(i)), entry=target.entry(int(j)),
                                     exact=_kind_name(int(ref.kinds[i, j])),
                                     left=float("nan") if left is None else float(left),
                                     right=float("nan") if right is None else float(right),
                                     limit=limit or "none", torch=g, matches_limit=bool(matches),
                                     why=verdict.kind if verdict else "not examined"))
    return tuple(out)


def _worst(ctx: _Context, target: Target, ref: _Reference, g: float, i: int, j: int) -> WorstPoint:
    r = float(ref.values[i, j])
    special = ctx.special.get(f"{target.label}:{target.wrt}")
    if special is not None and special.intervals is not None and not np.isnan(special.intervals[i, j, 0]):
        lo, hi = special.intervals[i, j]
        r = float(np.clip(g, lo, hi)) if np.isfinite(g) else float(lo if lo == hi else (lo + hi) / 2)
    a, rel, u = cmp.errors_at(r, g, ctx.dtype) if np.isfinite(g) else (float("inf"),) * 3
    key = (target.label, target.wrt, j)
    formula = ctx.compiled.formulas.get(key)
    if formula is None:  # the same entry is the worst in several modes and dtypes: print it once
        formula = sp.sstr(target.exprs[j], order="none")  # unsorted: 30× faster on long sums
        if len(formula) > MAX_FORMULA:
            formula = formula[:MAX_FORMULA] + " …"
        ctx.compiled.formulas[key] = formula
    return WorstPoint(point=ctx.points.point(i), entry=target.entry(j), reference=r, autograd=g,
                      abs_error=a, rel_error=rel, ulp_error=u, formula=formula)


def _allowed_text(comparison: cmp.Comparison, dtype: str) -> str:
    p = comparison.policy
    rule = f"rtol={p.rtol:.3g}·|exact| + atol={p.atol:.3g}"
    if comparison.worst_allowed is None:
        return f" {rule}"
    cond = comparison.worst_conditioning
    factorized = comparison.worst_factorized
    return (f" = {comparison.worst_allowed:.3g}: {rule}"
            + (f", conditioning {cond:.3g}" if cond is not None else "")
            + (f" with cond(A) = {factorized:.3g} of the matrix torch factorizes (or the spread of a product's factors)"
               + (f", singular in {dtype}: none granted for it" if dtype in cmp.EPS and cmp.singular_in(dtype, factorized)
                  else "")
               if factorized else ""))


def _conditioning_hint(comparison: cmp.Comparison, dtype: str) -> str | None:
    """When the worst error is within a small multiple of what the formula's conditioning
    allows: say so, and give the ``tolerance:`` line that accepts it."""
    cond, ratio, allowed = comparison.worst_conditioning, comparison.worst_ratio, comparison.worst_allowed
    if cond is None or not cond or ratio is None or allowed is None or comparison.accept is None:
        return None
    error = ratio * allowed
    if error > cmp.NEAR_CONDITIONING * cond or (comparison.worst_default or 0.0) >= cond:
        return None  # far beyond it, or the conditioning is not what limits this point
    rtol, atol = comparison.accept
    return (f"the worst error is {error / cond:.3g}× the rounding this formula's conditioning explains "
            f"(cancellation or amplified rounding, not necessarily a wrong formula); if that is expected, "
            f"`tolerance: {{{dtype}: {{rtol: {rtol:.3g}, atol: {atol:.3g}}}}}` accepts it")


def _message(comparison: cmp.Comparison, total: int, details: Details, dtype: str = "",
             raised: str | None = None) -> str:
    parts = [raised] if raised else []
    c = comparison.counts
    for d in [d for d in details.limits if not d.passed][:1]:
        at = ", ".join(f"{k} = {v}" for k, v in d.point.items())
        why = (f"the exact expression is {d.exact} there" if isinstance(d.exact, str)
               else f"SymPy's value there, {d.exact:.6g}, is only its branch convention")
        digits = ".6g" if not np.isfinite(d.torch) or abs(d.torch - d.limit) > 1e-5 * abs(d.limit) else ".17g"
        parts.append(f"exact limit {d.limit:{digits}} at {at} for {d.entry} ({why}); "
                     f"torch returned {d.torch:{digits}}")
    for d in [d for d in details.kinks if not np.isfinite(d.torch)][:1]:
        at = ", ".join(f"{k} = {v}" for k, v in d.point.items())
        parts.append(f"at {at} the one-sided limits of {d.entry} are {d.left:.6g} and {d.right:.6g} "
                     f"(a kink: any value between them is right); torch returned {d.torch:.6g}")
    if c.get("fail") and comparison.worst_ratio is not None and np.isinf(comparison.worst_ratio):
        parts.append(f"{c['fail']} of {total} points fail")
    elif c.get("fail"):
        parts.append(f"{c['fail']} of {total} points beyond tolerance "
                     f"(worst error is {comparison.worst_ratio:.3g}× the allowed"
                     + _allowed_text(comparison, dtype) + ")")
        hint = _conditioning_hint(comparison, dtype)
        if hint:
            parts.append(hint)
    if c.get("unstable"):
        parts.append(f"{_points(c['unstable'])} where the exact value is finite but torch returns NaN/inf")
    if c.get("kink"):
        parts.append(f"{_points(c['kink'], 'kink point')} where torch's value lies between the one-sided limits")
    if comparison.undecided:
        parts.append(f"{_points(comparison.undecided)} where a matrix torch factorizes is too ill-conditioned in "
                     f"{dtype} (cond(A) up to {comparison.undecided_condition:.3g}) to tell its rounding from a "
                     f"wrong formula (not compared)")
    if c.get("singular", 0) > comparison.undecided:
        parts.append(f"{_points(c['singular'] - comparison.undecided)} where the exact value is infinite (not compared)")
    if c.get("undefined"):
        parts.append(f"{_points(c['undefined'])} where the exact value is undefined (not compared)")
    if c.get("overflow"):
        parts.append(f"{_points(c['overflow'])} where the exact value overflows the dtype and torch gives ±inf")
    return "; ".join(parts) if parts else f"all {total} points within tolerance"


def _points(n: int, noun: str = "point") -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def expect_not_differentiable(case: Case, results: list[Result]) -> list[Result]:
    """A case that claims ``differentiable: false`` expects torch to refuse: its refusals are
    the expected outcome (the claim itself is checked as ``expect.differentiable``)."""
    if not case.expect or case.expect.get("differentiable", True) is not False:
        return list(results)
    return [r.with_outcome(XFAIL, f"as the case claims (differentiable: false): {r.message}")
            if r.status == NOT_DIFFERENTIABLE else r for r in results]


def apply_xfail(case: Case, results: list[Result]) -> list[Result]:
    """An ``xfail`` case passes the run when it fails, and is an unexpected pass otherwise."""
    if not case.xfail:
        return list(results)
    if any(r.status in FAILING for r in results):
        return [r.with_outcome(XFAIL, f"expected failure ({case.xfail}): {r.message}")
                if r.status in FAILING else r for r in results]
    return [replace(r, status=XPASS, message=f"unexpected pass: the case is marked xfail ({case.xfail})")
            for r in results]


# --- LaTeX for reports ------------------------------------------------------------------


def latex_of(value: np.ndarray, text: str) -> str:
    """The LaTeX of a case's value: a scalar as itself; a vector or matrix, however small,
    as a column or matrix capped in size with the parts its entries share named once
    (symbolic.display: a 3-vector layer norm's entries share its mean and variance)."""
    if value.size == 1 and _small(value.ravel()[0]):
        return sp.latex(value.ravel()[0], order="none")
    if value.size > 1:
        from .symbolic.display import value_display
        return value_display(value)
    return r"\texttt{" + text.replace("_", r"\_").replace("{", r"\{").replace("}", r"\}") + "}"


def _small(expr, limit: int = MAX_LATEX_NODES) -> bool:
    """At most ``limit`` nodes: a formula a report can show (printing the LaTeX of a sum of
    1024 exponentials takes longer than checking it, and nobody reads it)."""
    if not isinstance(expr, sp.Basic):
        return True
    for count, _ in enumerate(sp.preorder_traversal(expr)):
        if count >= limit:
            return False
    return True


def derivative_latex(compiled: CompiledCase) -> list[tuple[str, str]]:
    """One readable formula per checked derivative (symbolic.display: a matrix capped in
    size, shared subexpressions named), never the entries one by one."""
    from .symbolic.display import derivative_display
    return [derivative_display(compiled.targets(check)[0])
            for check in compiled.checks if check.kind != "intermediates"]
