"""``expect``: claims about a case, checked against its exact derivative.

:func:`check_claims` turns the ``expect`` mapping of a compiled case into results whose
``check`` is ``expect.<kind>``:

* ``derivative``, ``gradient``, ``jacobian`` — an identity, written in the case language,
  claimed for the exact derivative. It holds when the difference simplifies to zero
  (method ``symbolic``) or, where simplification cannot decide, when it vanishes at many
  seeded random points evaluated with 50 significant digits (method ``numeric``).
* ``values`` — numbers claimed at points: the function's ``value``, its ``derivative``,
  ``gradient``, ``jacobian`` and ``intermediates`` (d output / d let step). A claimed number
  holds when the exact value, rounded half-even to the decimal places written, equals it
  exactly: ``-21.44`` against an exact ``-536/25`` holds, ``72`` against ``24`` fails.
* ``differentiable`` — ``false``: torch cannot differentiate the function (it raises, or the
  output has no gradient path); ``true``: it can.
* ``descent`` — gradient-descent steps ``x ← x − lr·∇f(x)`` from ``start``, run in exact
  arithmetic and with torch autograd side by side; each claimed step is a number claim.

Numbers written in a claim, the ``at`` points and ``start`` are read as the exact decimal
they are written as (``0.1`` is 1/10), and so are constants. torch's values are computed by
the case's own torch implementation in the case's first dtype (float64 unless the case says
otherwise); they are shown beside the claim, the verdict is the exact value's alone.

A malformed claim is a :class:`CaseFileError` placed at ``expect.<kind>``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any, Mapping, Sequence

import mpmath
import numpy as np
import sympy as sp
from sympy.printing.pycode import PythonCodePrinter
import torch

from ..autograd import CannotDifferentiate, classify_error
from ..case import Case, Check
from ..errors import CaseFileError, ExpressionError
from ..language import parse, to_math
from ..points import torch_dtype
from ..reference.mp import MODULES
from ..results import ERROR, FAIL, PASS, UNSET, ClaimRow, DescentStep, Details, Result, Status
from ..symbolic import CompiledCase, placed

KINDS = ("derivative", "gradient", "jacobian", "values", "differentiable", "descent")
VALUE_KINDS = ("value", "derivative", "gradient", "jacobian", "intermediates")

MAX_SIMPLIFY_OPS = 2000      # identities larger than this go straight to the numeric method
NUMERIC_POINTS = 32          # random points of the numeric method
NUMERIC_DPS = 50             # significant digits of the numeric method
NUMERIC_TOL = mpmath.mpf("1e-30")
MAX_DESCENT_STEPS = 1000     # iterations a descent claim may ask for
MAX_EXACT_TEXT = 300         # characters of an exact closed form shown in a report
EXACT_DIGITS = 60            # digits kept when an exact iterate is not rational
MAX_SIMPLIFY_VALUE_OPS = 60  # exact values this small are simplified before they are shown
MAX_RATIONAL_DIGITS = 60     # longer rationals are shown as decimals
MAX_RATIONAL_BITS = 4000     # a descent iterate beyond this continues in EXACT_DIGITS-digit floats


# --- entry point --------------------------------------------------------------------------

def check_claims(compiled: CompiledCase) -> list[Result]:
    """One or more results per claim of ``compiled.case.expect`` (empty without claims)."""
    case = compiled.case
    expect = case.expect or {}
    if not isinstance(expect, Mapping):
        raise _error(case, "expect", "`expect` must be a mapping of claims")
    unknown = [k for k in expect if k not in KINDS]
    if unknown:
        raise _error(case, "expect", f"unknown claim {unknown[0]!r}; claims are {', '.join(KINDS)}")
    results: list[Result] = []
    for kind in ("derivative", "gradient", "jacobian"):
        if kind in expect:
            results.append(_identity(compiled, kind, expect[kind]))
    if "values" in expect:
        entries = expect["values"]
        if not isinstance(entries, list) or not entries:
            raise _error(case, "expect.values", "`values` must be a non-empty list of {at: ..., <kind>: ...}")
        for i, entry in enumerate(entries):
            results.append(_values(compiled, entry, f"expect.values.{i}"))
    if "differentiable" in expect:
        results.append(_differentiable(compiled, expect["differentiable"]))
    if "descent" in expect:
        runs = expect["descent"]
        if isinstance(runs, Mapping):
            results.append(_descent(compiled, runs, "expect.descent"))
        elif isinstance(runs, list) and runs:
            for i, run in enumerate(runs):
                results.append(_descent(compiled, run, f"expect.descent.{i}"))
        else:
            raise _error(case, "expect.descent", "`descent` must be {start, lr, steps} or a list of them")
    return results


# --- small helpers ------------------------------------------------------------------------

def _error(case: Case, key: str, message: str, hint: str | None = None) -> CaseFileError:
    return CaseFileError(f"in `{key}` of case {case.name!r}: {message}", case.where(key), hint, case=case.name)


def _result(case: Case, kind: str, status: Status, message: str, points: int, details: Details) -> Result:
    """A claim's result, built once from its verdict."""
    return Result(case=case.name, file=case.file, check=f"expect.{kind}", mode=None, dtype=None, status=status,
                  message=message, points=points, details=details)


def _rows(rows: list[dict]) -> tuple[ClaimRow, ...]:
    return tuple(ClaimRow(**row) for row in rows)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _written(v: Any) -> Decimal:
    """The decimal a YAML number is written as: the loader's ``WrittenFloat.text`` when it is
    there (``0.0000e+00`` keeps its four places), else the shortest repr of the float."""
    text = getattr(v, "text", None)
    if text is not None:
        try:
            d = Decimal(text.strip().replace("_", ""))
            if d.is_finite() and float(d) == float(v):
                return d
        except ArithmeticError:
            pass
    return Decimal(repr(float(v)))


def exact_number(v: Any) -> Fraction:
    """A YAML number as the exact decimal it is written as (``0.1`` → 1/10)."""
    return Fraction(_written(v)) if isinstance(v, float) else Fraction(v)


def decimals(v: Any) -> int:
    """Decimal places written in ``v``: 0 for an int, ``-21.44`` → 2, ``1.6655e-34`` → 38,
    ``0.0000e+00`` → 4 (when the loader kept the text), ``1e+16`` → -16 (a multiple of 10^16)."""
    if isinstance(v, int):
        return 0
    return -_written(v).as_tuple().exponent


def round_half_even(x: Fraction, places: int) -> Fraction:
    """``x`` rounded half-even to ``places`` decimal places (negative: to tens, hundreds…)."""
    scale = Fraction(10) ** places
    return Fraction(round(x * scale)) / scale


def _rational(v: Any) -> sp.Rational:
    f = exact_number(v)
    return sp.Rational(f.numerator, f.denominator)


def _number_array(value: Any, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    """A number or nested list of numbers as an object array of the original numbers;
    None when it is not one (or, with ``shape``, not of that shape)."""
    try:
        a = np.array(value, dtype=object)
    except (ValueError, TypeError):
        return None
    if a.dtype != object or not all(_is_number(v) for v in a.ravel()):
        return None
    if any(isinstance(v, (list, tuple)) for v in a.ravel()):
        return None
    if shape is not None and a.shape != tuple(shape):
        return None
    return a


def _plain(a: np.ndarray) -> Any:
    """An object array as a number or nested lists."""
    return a[()] if a.ndim == 0 else a.tolist()


def _as_written(a: np.ndarray) -> Any:
    """Claimed numbers for a report: ints as ints, floats as the text written in the case
    file when the loader kept it (``0.0000e+00``, ``72.``), else as floats."""
    def one(v):
        text = getattr(v, "text", None)
        return text.strip() if text else v
    if a.ndim == 0:
        return one(a[()])
    return _plain(np.frompyfunc(one, 1, 1)(a))


def _fmt_num(v: Any) -> str:
    if getattr(v, "text", None):
        return v.text.strip()
    if isinstance(v, float):
        return repr(v)
    return str(v)


def _fmt(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = _plain(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={_fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    return _fmt_num(value)


# --- exact values -------------------------------------------------------------------------

class Exact:
    """An exact value: the SymPy number, its text, a float, and a high-precision Fraction."""

    def __init__(self, expr: sp.Expr):
        expr = _simpler(expr)
        self.expr = expr
        self.defined = True
        self.infinite = False
        if expr.is_Rational:
            self.fraction = Fraction(int(expr.p), int(expr.q))
            self.float = float(self.fraction)
            digits = int(max(abs(int(expr.p)).bit_length(), int(expr.q).bit_length()) * 0.30103) + 1
            self.text = (_rational_text(self.fraction) if digits <= MAX_RATIONAL_DIGITS else
                         f"{sp.N(expr, 17)} (a rational of {digits} digits)")
            return
        value = sp.N(expr, 30)
        if value in (sp.oo, -sp.oo):
            self.infinite, self.fraction = True, None
            self.float = float("inf") if value == sp.oo else float("-inf")
            self.text = str(value)
            return
        if not (value.is_number and value.is_real and value.is_finite) or not value.is_Float:
            self.defined, self.fraction, self.float = False, None, float("nan")
            self.text = f"undefined ({_short(expr)})"
            return
        self.float = float(value)
        self.fraction = None  # computed on demand at the precision a claim needs
        if expr.is_Float:  # a high-precision iterate, not a closed form
            self.text = f"{sp.N(expr, 17)} (to {EXACT_DIGITS} digits)"
            return
        closed = _short(expr)
        self.text = f"{closed} ≈ {sp.N(expr, 17)}" if closed != str(value) else str(sp.N(expr, 17))

    def approx(self, places: int) -> Fraction | None:
        """A Fraction close enough to decide rounding to ``places`` decimals."""
        if not self.defined or self.infinite:
            return None
        if self.fraction is not None:
            return self.fraction
        magnitude = max(0, int(math.log10(abs(self.float)) + 1)) if self.float else 0
        digits = max(places, 0) + magnitude + 30
        value = sp.N(self.expr, digits)
        return Fraction(sp.Rational(value).p, sp.Rational(value).q)

    def rounded(self, places: int) -> str | None:
        """The exact value rounded half-even to ``places`` decimals, as text."""
        x = self.approx(places)
        if x is None:
            return None
        r = round_half_even(x, places)
        d = Decimal(r.numerator) / Decimal(r.denominator) if places > 0 else Decimal(int(r))
        return f"{d.quantize(Decimal(1).scaleb(-places)) if places > 0 else d:f}"

    def holds(self, claimed: Any) -> bool:
        places = decimals(claimed)
        x = self.approx(places)
        if x is None:
            return False
        return round_half_even(x, places) == exact_number(claimed)


def _simpler(expr: sp.Expr) -> sp.Expr:
    """A small closed form simplified when that gives a rational (a softmax's sum → 1)."""
    if expr.is_Rational or expr.is_Float:
        return expr
    try:
        if sp.count_ops(expr) <= MAX_SIMPLIFY_VALUE_OPS:
            simple = sp.cancel(sp.together(expr))
            if simple.is_Rational:
                return simple
    except Exception:  # keep the closed form as it is
        pass
    return expr


def _rational_text(x: Fraction) -> str:
    """``24``, ``-536/25 = -21.44``, ``1/3 ≈ 0.33333333333333331``."""
    if x.denominator == 1:
        return str(x.numerator)
    q = x.denominator
    for p in (2, 5):
        while q % p == 0:
            q //= p
    if q == 1:  # a terminating decimal: show it in full when it is short
        d = Decimal(x.numerator) / Decimal(x.denominator)
        if len(str(d)) <= 24:
            return f"{x} = {d:f}"
    return f"{x} ≈ {float(x)!r}"


def _short(expr: sp.Expr) -> str:
    text = str(expr)
    return text if len(text) <= MAX_EXACT_TEXT else text[:MAX_EXACT_TEXT] + " …"


def _exact_array(exprs: np.ndarray) -> np.ndarray:
    out = np.empty(exprs.shape, dtype=object)
    for idx in np.ndindex(exprs.shape):
        out[idx] = Exact(sp.sympify(exprs[idx]))
    return out


def _texts(a: np.ndarray) -> Any:
    return _plain(np.frompyfunc(lambda e: e.text, 1, 1)(a)) if a.ndim else a[()].text


def _floats(a: np.ndarray) -> Any:
    return _plain(np.frompyfunc(lambda e: e.float, 1, 1)(a)) if a.ndim else a[()].float


# --- the environment of a claim -----------------------------------------------------------

def _constant_subs(compiled: CompiledCase) -> dict[sp.Symbol, sp.Rational]:
    """Each constant symbol → the exact decimal of its value (``0.1`` → 1/10)."""
    subs: dict[sp.Symbol, sp.Rational] = {}
    for name, syms in compiled.const_symbols.items():
        values = compiled.const_values[name]
        for sym, v in zip(syms.ravel(), values.ravel()):
            subs[sym] = _rational(float(v))
    return subs


def _point_subs(compiled: CompiledCase, point: Mapping[str, np.ndarray]) -> dict[sp.Symbol, sp.Rational]:
    subs = _constant_subs(compiled)
    for name, syms in compiled.var_symbols.items():
        for sym, v in zip(syms.ravel(), point[name].ravel()):
            subs[sym] = _rational(v)
    return subs


def _read_point(compiled: CompiledCase, at: Any, key: str, what: str = "at") -> dict[str, np.ndarray]:
    """An ``at``/``start`` mapping → variable name → object array of the written numbers."""
    case = compiled.case
    names = [v.name for v in case.variables]
    if not isinstance(at, Mapping):
        raise _error(case, key, f"`{what}` must map every variable to a number or nested list")
    missing = [n for n in names if n not in at]
    extra = [n for n in at if n not in names]
    if missing or extra:
        raise _error(case, key, f"`{what}` must give exactly the variables {names}"
                     + (f"; missing {missing}" if missing else "") + (f"; unknown {extra}" if extra else ""))
    out = {}
    for v in case.variables:
        a = _number_array(at[v.name])
        if a is None:
            raise _error(case, key, f"`{what}`: {v.name} is not a finite number or nested list of numbers")
        if a.shape != v.shape:
            raise _error(case, key, f"`{what}`: {v.name} has shape {list(a.shape)}, "
                         f"the variable has shape {list(v.shape)}")
        out[v.name] = a
    return out


def _claim_env(compiled: CompiledCase) -> dict[str, np.ndarray]:
    """The names a claim may use: variables, constants (as symbols, or as exact numbers where
    the case compiled them as numbers) and let steps."""
    consts = {}
    for name, values in compiled.const_values.items():
        if name in compiled.const_symbols:
            consts[name] = compiled.const_symbols[name]
        else:
            a = np.empty(values.shape, dtype=object)
            for idx in np.ndindex(values.shape):
                a[idx] = _rational(float(values[idx]))
            consts[name] = a
    return {**compiled.var_symbols, **consts, **compiled.let_math}


def _torch_dtype_name(case: Case) -> str:
    return case.dtypes[0] if case.dtypes else "float64"


def _offsets(compiled: CompiledCase) -> dict[str, tuple[int, int]]:
    out, start = {}, 0
    for v in compiled.case.variables:
        n = int(np.prod(v.shape, dtype=int))
        out[v.name] = (start, start + n)
        start += n
    return out


def _jacobian_exprs(compiled: CompiledCase) -> np.ndarray:
    """The exact Jacobian, (outputs, all input entries), reusing the case's cached target."""
    check = Check("gradient") if compiled.output.ndim == 0 else Check("jacobian")
    target = compiled.targets(check)[0]
    return np.array(target.exprs, dtype=object).reshape(target.shape)


def _intermediate_exprs(compiled: CompiledCase, step: str) -> np.ndarray:
    for target in compiled.targets(Check("intermediates")):
        if target.wrt == step:
            return np.array(target.exprs, dtype=object).reshape(target.shape)
    raise KeyError(step)


# --- torch at one point -------------------------------------------------------------------

class TorchAt:
    """The case's torch implementation at one point: value, Jacobian and d output / d step
    from ``torch.autograd.grad``. Failures are kept as text in ``error``."""

    def __init__(self, compiled: CompiledCase, point: Mapping[str, Any], dtype: str,
                 steps: Sequence[str] = ()):
        self.dtype = dtype
        self.error: str | None = None        # why torch has no derivatives here
        self.value_error: str | None = None  # why torch has no value here
        self.value = self.jacobian = None
        self.intermediates: dict[str, np.ndarray] = {}
        td = torch_dtype(dtype)
        try:
            leaves = [torch.tensor(np.asarray(point[v.name], dtype=np.float64), dtype=td).requires_grad_(True)
                      for v in compiled.case.variables]
            consts = {n: torch.as_tensor(v, dtype=td) for n, v in compiled.const_values.items()}
            kept: dict[str, torch.Tensor] = {}

            def keep(name, value):
                if name in steps and isinstance(value, torch.Tensor):
                    kept[name] = value
            out = compiled.forward(leaves, consts, td, on_let=keep)
            if not isinstance(out, torch.Tensor):
                out = torch.as_tensor(out, dtype=td)
            self.value = _np(out.detach())
            flat = out.reshape(-1)
            kept = {n: t for n, t in kept.items() if t.requires_grad}
            with_grad = [*leaves, *kept.values()]
            rows, inter_rows = [], {s: [] for s in kept}
            for i in range(flat.numel()):
                if not flat[i].requires_grad:
                    grads = [None] * len(with_grad)
                else:
                    grads = torch.autograd.grad(flat[i], with_grad, retain_graph=True, allow_unused=True)
                parts = [(g if g is not None else torch.full_like(x, float("nan"))).reshape(-1)
                         for g, x in zip(grads[:len(leaves)], leaves)]
                rows.append(_np(torch.cat(parts)) if parts else np.zeros(0))
                for (name, t), g in zip(kept.items(), grads[len(leaves):]):
                    inter_rows[name].append(_np((g if g is not None else torch.full_like(t, float("nan"))).reshape(-1)))
            self.jacobian = np.array(rows)
            self.intermediates = {s: np.array(r) for s, r in inter_rows.items()}
        except Exception as err:  # torch raised: report its message beside the claim
            self.error = str(classify_error(err))
            if self.value is None:
                self.value_error = self.error


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _tfloat(x: float) -> float | str:
    x = float(x)
    return x if math.isfinite(x) else ("nan — no gradient path" if math.isnan(x) else str(x))


def _torch_plain(a: np.ndarray | None) -> Any:
    if a is None:
        return None
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 0:
        return _tfloat(a)
    return _plain(np.frompyfunc(_tfloat, 1, 1)(a))


# --- identities ---------------------------------------------------------------------------

# Long on purpose (about 100 lines): one identity claim is one decision over shared state (the claimed
# array, the exact Jacobian, its offsets): read, check shapes, simplify, then the high-precision
# numeric fallback. Its structure checks moved to the loader; splitting the rest is left to the claims split.
def _identity(compiled: CompiledCase, kind: str, spec: Any) -> Result:
    case = compiled.case
    key = f"expect.{kind}"
    points = 0
    jac = _jacobian_exprs(compiled)
    offsets = _offsets(compiled)
    out_shape = compiled.out_shape
    groups: list[tuple[str, str, str, np.ndarray, np.ndarray]] = []  # (label, text, key, claimed, exact)

    def read(text: Any, where: str) -> np.ndarray:
        if not isinstance(text, str) and not _is_number(text):
            raise _error(case, where, "an identity claim is an expression of the case language (text)")
        try:
            return to_math(parse(str(text)), _claim_env(compiled))
        except ExpressionError as err:
            raise placed(err, case, where) from None

    if kind == "derivative":
        if len(case.variables) != 1 or case.variables[0].shape or compiled.output.ndim:
            raise _error(case, key, "`derivative` needs a scalar function of one scalar variable",
                         "use `gradient` or `jacobian`")
        claimed = read(spec, key)
        _shape_or_error(case, key, claimed, ())
        v = case.variables[0].name
        groups.append((f"df/d{v}", str(spec), key, claimed, np.array(jac[0, 0], dtype=object)))
    elif kind == "gradient":
        if compiled.output.ndim:
            raise _error(case, key, "`gradient` needs a scalar output", "use `jacobian` for a vector output")
        if isinstance(spec, (str, int, float)) and len(case.variables) == 1:
            spec = {case.variables[0].name: spec}
        if not isinstance(spec, Mapping) or not spec:
            raise _error(case, key, "`gradient` maps variables to expressions: {w: ...}")
        for name, text in spec.items():
            where = f"{key}.{name}"
            if name not in offsets:
                raise _error(case, where, f"{name!r} is not a variable of the case "
                             f"(variables: {[v.name for v in case.variables]})")
            var = case.variable(name)
            lo, hi = offsets[name]
            exact = jac[0, lo:hi].reshape(var.shape)
            claimed = _broadcast(case, where, read(text, where), var.shape)
            groups.append((f"∂f/∂{name}", str(text), where, claimed, exact))
    else:  # jacobian
        if isinstance(spec, Mapping):
            items = list(spec.items())
        elif len(case.variables) == 1:
            items = [(case.variables[0].name, spec)]
        else:
            raise _error(case, key, "with several variables, `jacobian` maps each variable to its block")
        for name, text in items:
            where = f"{key}.{name}" if isinstance(spec, Mapping) else key
            if name not in offsets:
                raise _error(case, where, f"{name!r} is not a variable of the case")
            var = case.variable(name)
            lo, hi = offsets[name]
            block = jac[:, lo:hi]
            claimed = read(text, where)
            full = tuple(out_shape) + tuple(var.shape)
            if claimed.shape == full:
                exact = block.reshape(full)
            elif claimed.shape == block.shape:
                exact = block
            else:
                raise _error(case, where, f"the claimed Jacobian has shape {list(claimed.shape)}; "
                             f"d {list(out_shape)} / d {name}{list(var.shape)} has shape {list(full)}")
            groups.append((f"∂y/∂{name}", str(text), where, claimed, exact))

    subs = _constant_subs(compiled)
    rows, failures, methods = [], [], []
    for label, text, where, claimed, exact in groups:
        verdict = decide_identity(claimed, exact, subs, compiled)
        methods.append(verdict["method"])
        row = {"label": label, "claim": text, "claimed": text, "exact": _short_exprs(exact),
               "torch": None, "method": verdict["method"], "holds": verdict["holds"]}
        if verdict.get("counterexample"):
            ce = verdict["counterexample"]
            row["at"] = ce["point"]
            row["claimed"] = ce["claimed"]
            row["exact"] = ce["exact"]
            row["torch"] = _torch_entry(compiled, ce["point"], where, kind, label)
            failures.append(f"{label} = {text} is false: at {_fmt(ce['point'])} the claim gives "
                            f"{ce['claimed']}, the exact derivative is {ce['exact']} "
                            f"(they differ by {ce['difference']})"
                            + (f", torch {_fmt(row['torch'])}" if row["torch"] is not None else ""))
        elif verdict["holds"] is None:
            failures.append(f"{label} = {text}: {verdict['reason']}")
        rows.append(row)
        points = max(points, verdict["points"])
    undecided = [r for r in rows if r["holds"] is None]
    method = "symbolic" if all(m == "symbolic" for m in methods) else "numeric"
    if failures:
        status = ERROR if undecided and all(r["holds"] is not False for r in rows) else FAIL
        message = "; ".join(failures)
    else:
        how = ("the difference simplifies to zero" if method == "symbolic" else
               f"the difference vanishes at {NUMERIC_POINTS} random points ({NUMERIC_DPS} digits)")
        status, message = PASS, f"{kind} identity holds ({method}: {how})"
    return _result(case, kind, status, message, points, Details(claim=_rows(rows), method=method))


def _short_exprs(exact: np.ndarray) -> Any:
    return _plain(np.frompyfunc(lambda e: _short(sp.sympify(e)), 1, 1)(exact)) if exact.ndim else _short(exact[()])


def _shape_or_error(case: Case, key: str, claimed: np.ndarray, shape: tuple) -> None:
    if claimed.shape != tuple(shape):
        raise _error(case, key, f"the claim has shape {list(claimed.shape)}, the derivative has shape {list(shape)}")


def _broadcast(case: Case, key: str, claimed: np.ndarray, shape: tuple) -> np.ndarray:
    if claimed.shape == tuple(shape):
        return claimed
    if claimed.ndim == 0:
        return np.full(shape, claimed[()], dtype=object)
    raise _error(case, key, f"the claim has shape {list(claimed.shape)}, the variable has shape {list(shape)}")


def decide_identity(claimed: np.ndarray, exact: np.ndarray, subs: Mapping, compiled: CompiledCase) -> dict:
    """Whether ``claimed == exact`` entry by entry, with constants substituted: symbolic first,
    then numeric. Returns {holds, method, points, counterexample?, reason?}."""
    diffs = [sp.sympify(c - e).xreplace(subs) for c, e in zip(claimed.ravel(), exact.ravel())]
    undecided = []
    for i, d in enumerate(diffs):
        if not _simplifies_to_zero(d):
            undecided.append(i)
    if not undecided:
        return {"holds": True, "method": "symbolic", "points": 0}
    return _numeric(compiled, [diffs[i] for i in undecided], [sp.sympify(claimed.ravel()[i]).xreplace(subs)
                                                              for i in undecided],
                    [sp.sympify(exact.ravel()[i]).xreplace(subs) for i in undecided])


def _simplifies_to_zero(d: sp.Expr) -> bool:
    """Whether SymPy can show ``d`` is identically zero. ``cancel`` after splitting exponentials
    (exp(a + b) → exp(a)·exp(b)) proves the identities of these notes — σ′ = σ(1 − σ), the
    softmax Jacobian s(δ − s) — in a fifth of ``simplify``'s time; ``simplify`` runs only when
    that fails and ``d`` is not plainly nonzero at a sample point."""
    if d == 0:
        return True
    try:
        if sp.count_ops(d) > MAX_SIMPLIFY_OPS:
            return False
        if sp.cancel(sp.expand(d, power_exp=True)) == 0:
            return True
        if _plainly_nonzero(d):
            return False
        return sp.simplify(d) == 0
    except Exception:  # simplify can fail on Piecewise/Heaviside mixes: let numbers decide
        return False


def _plainly_nonzero(d: sp.Expr) -> bool:
    """``d`` at one point (every symbol in (0, 1), which all real, positive or nonnegative
    symbols allow) is a number far from zero: no simplification can make it vanish."""
    syms = sorted(d.free_symbols, key=str)
    if any(s.is_negative or s.is_nonpositive or s.is_integer for s in syms):
        return False
    point = {s: sp.Rational(3 + 7 * k % 11, 13) for k, s in enumerate(syms)}
    value = d.xreplace(point).evalf(30)
    return bool(value.is_number and value.is_finite and value.is_real and abs(value) > sp.Float("1e-20"))


def _numeric(compiled: CompiledCase, diffs, claimed, exact) -> dict:
    case = compiled.case
    syms = [s for a in compiled.var_symbols.values() for s in a.ravel()]
    fn_d = sp.lambdify(syms, diffs, modules=MODULES)
    fn_c = sp.lambdify(syms, claimed, modules=MODULES)
    fn_e = sp.lambdify(syms, exact, modules=MODULES)
    rng = np.random.default_rng(case.seed)
    checked = 0
    for _ in range(NUMERIC_POINTS):
        point = {v.name: rng.uniform(v.domain[0], v.domain[1], size=v.shape) for v in case.variables}
        row = [x for v in case.variables for x in np.asarray(point[v.name], dtype=np.float64).ravel()]
        with mpmath.workdps(NUMERIC_DPS):
            args = [mpmath.mpf(float(x)) for x in row]
            try:
                ds = fn_d(*args)
                es = fn_e(*args)
            except (ZeroDivisionError, ValueError, OverflowError, TypeError):
                continue
            values = [(_mp(d), _mp(e)) for d, e in zip(ds, es)]
            if any(d is None or e is None for d, e in values):
                continue  # undefined here (a kink, a pole): not a counterexample
            checked += 1
            for j, (d, e) in enumerate(values):
                if abs(d) > NUMERIC_TOL * (1 + abs(e)):
                    c = _mp(fn_c(*args)[j])
                    shown = {v.name: _plain_floats(point[v.name]) for v in case.variables}
                    return {"holds": False, "method": "numeric", "points": checked,
                            "counterexample": {"point": shown,
                                               "claimed": mpmath.nstr(c, 17) if c is not None else "undefined",
                                               "exact": mpmath.nstr(e, 17), "difference": mpmath.nstr(d, 5),
                                               "entry": j}}
    if checked == 0:
        return {"holds": None, "method": "numeric", "points": 0,
                "reason": "undecided: the difference is undefined at every random point"}
    return {"holds": True, "method": "numeric", "points": checked}


def _plain_floats(a: np.ndarray) -> Any:
    a = np.asarray(a, dtype=np.float64)
    return float(a) if a.ndim == 0 else a.tolist()


def _mp(value):
    if isinstance(value, sp.Basic):
        try:
            value = mpmath.mpmathify(sp.N(value, NUMERIC_DPS))
        except (TypeError, ValueError):
            return None
    if isinstance(value, (int, float)):
        value = mpmath.mpf(value)
    if isinstance(value, mpmath.mpc):
        if value.imag != 0:
            return None
        value = value.real
    if not isinstance(value, mpmath.mpf) or mpmath.isnan(value) or mpmath.isinf(value):
        return None
    return value


def _torch_entry(compiled: CompiledCase, point: Mapping[str, Any], where: str, kind: str, label: str) -> Any:
    """torch's derivative for an identity's variable block at a counterexample point."""
    t = TorchAt(compiled, point, _torch_dtype_name(compiled.case))
    if t.error:
        return t.error
    name = where.rsplit(".", 1)[-1] if where.count(".") >= 2 else compiled.case.variables[0].name
    lo, hi = _offsets(compiled)[name]
    block = t.jacobian[:, lo:hi]
    if kind in ("derivative", "gradient"):
        return _torch_plain(block[0].reshape(compiled.case.variable(name).shape))
    return _torch_plain(block)


# --- values at points ---------------------------------------------------------------------

def _values(compiled: CompiledCase, entry: Any, key: str) -> Result:
    case = compiled.case
    if not isinstance(entry, Mapping) or "at" not in entry:
        raise _error(case, key, "each `values` entry is {at: {variable: value}, <kind>: <number(s)>}",
                     f"kinds: {', '.join(VALUE_KINDS)}")
    unknown = [k for k in entry if k != "at" and k not in VALUE_KINDS]
    if unknown:
        raise _error(case, key, f"unknown value claim {unknown[0]!r}; value claims are {', '.join(VALUE_KINDS)}")
    kinds = [k for k in VALUE_KINDS if k in entry]
    if not kinds:
        raise _error(case, key, "the entry claims nothing", f"add one of {', '.join(VALUE_KINDS)}")
    point = _read_point(compiled, entry["at"], f"{key}.at")
    subs = _point_subs(compiled, point)
    steps = list(entry["intermediates"]) if isinstance(entry.get("intermediates"), Mapping) else []
    dtype = _torch_dtype_name(case)
    tpoint = {n: np.asarray(_plain(a), dtype=np.float64) for n, a in point.items()}
    t = TorchAt(compiled, tpoint, dtype, steps)
    shown_at = {n: _plain(a) for n, a in point.items()}
    rows, failures, count = [], [], 0
    for kind in kinds:
        for label, claimed, exact_exprs, torch_value in _value_claims(compiled, kind, entry[kind], f"{key}.{kind}", t):
            exact = _exact_array(np.frompyfunc(lambda e: sp.sympify(e).xreplace(subs), 1, 1)(exact_exprs)
                                 if exact_exprs.ndim else np.array(sp.sympify(exact_exprs[()]).xreplace(subs),
                                                                    dtype=object))
            verdicts = np.frompyfunc(lambda e, c: e.holds(c), 2, 1)(exact, claimed)
            holds = bool(np.all(verdicts))
            count += claimed.size
            places = sorted({decimals(c) for c in claimed.ravel()})
            method = (f"rounded to {places[0]} decimal{'s' if places[0] != 1 else ''}" if len(places) == 1
                      else "rounded to the decimals written")
            row = {"label": label, "claim": f"{label} = {_fmt(claimed)}", "at": shown_at,
                   "claimed": _as_written(claimed), "exact": _texts(exact), "exact_float": _floats(exact),
                   "torch": torch_value, "method": method, "holds": holds}
            rows.append(row)
            if not holds:
                failures.append(f"claims {label} = {_fmt(claimed)} at {_fmt(shown_at)}; "
                                f"exact {_fmt(row['exact'])}{_rounding_note(exact, claimed)}, "
                                f"torch ({dtype}) {_fmt(row['torch'])}")
    if failures:
        status, message = FAIL, "; ".join(failures)
    else:
        status = PASS
        message = f"{count} claimed number{'s' if count != 1 else ''} at {_fmt(shown_at)} hold " \
                  f"(exact value rounded to the decimals written)"
    return _result(case, "values", status, message, count, Details(claim=_rows(rows), torch_dtype=dtype))


# Long on purpose (about 75 lines): one short branch per kind of value claim (value, derivative,
# gradient, jacobian, intermediates), each yielding the same tuple.
def _value_claims(compiled: CompiledCase, kind: str, spec: Any, key: str, t: TorchAt):
    """(label, claimed numbers, exact expressions, torch's values) for one kind of a values entry."""
    case = compiled.case
    out_shape = compiled.out_shape
    if kind == "value":
        claimed = _claimed(case, key, spec, out_shape, "the value")
        yield "f", claimed, compiled.output, t.value_error or _torch_plain(t.value)
        return
    jac = _jacobian_exprs(compiled)
    offsets = _offsets(compiled)
    if kind == "derivative":
        if len(case.variables) != 1 or case.variables[0].shape or compiled.output.ndim:
            raise _error(case, key, "`derivative` needs a scalar function of one scalar variable",
                         "use `gradient` or `jacobian`")
        claimed = _claimed(case, key, spec, (), "the derivative")
        yield (f"df/d{case.variables[0].name}", claimed, np.array(jac[0, 0], dtype=object),
               t.error or _torch_plain(t.jacobian[0, 0]))
        return
    if kind == "gradient":
        if compiled.output.ndim:
            raise _error(case, key, "`gradient` needs a scalar output", "use `jacobian` for a vector output")
        if not isinstance(spec, Mapping) or not spec:
            if len(case.variables) == 1:
                spec = {case.variables[0].name: spec}
            else:
                raise _error(case, key, "`gradient` maps variables to numbers: {w: 24}")
        for name, value in spec.items():
            if name not in offsets:
                raise _error(case, f"{key}.{name}", f"{name!r} is not a variable of the case")
            var = case.variable(name)
            lo, hi = offsets[name]
            claimed = _claimed(case, f"{key}.{name}", value, var.shape, f"the gradient for {name}")
            torch_value = t.error or _torch_plain(t.jacobian[0, lo:hi].reshape(var.shape))
            yield f"∂f/∂{name}", claimed, jac[0, lo:hi].reshape(var.shape), torch_value
        return
    if kind == "jacobian":
        a = _number_array(spec)
        if a is None:
            raise _error(case, key, "`jacobian` is a nested list of numbers")
        if a.shape == jac.shape:
            exact, tj = jac, (None if t.error else t.jacobian)
        elif int(np.prod(a.shape, dtype=int)) == jac.size and a.shape == tuple(out_shape) + tuple(
                d for v in case.variables for d in v.shape) and len(case.variables) == 1:
            exact, tj = jac.reshape(a.shape), (None if t.error else t.jacobian.reshape(a.shape))
        else:
            raise _error(case, key, f"the claimed Jacobian has shape {list(a.shape)}, "
                         f"the Jacobian has shape {list(jac.shape)} (outputs × inputs)")
        yield "Jacobian", a, exact, t.error or _torch_plain(tj)
        return
    # intermediates
    if not isinstance(spec, Mapping) or not spec:
        raise _error(case, key, "`intermediates` maps let steps to numbers: {y: 2}")
    for step, value in spec.items():
        if step not in compiled.let_math:
            raise _error(case, f"{key}.{step}", f"{step!r} is not a `let` step of the case "
                         f"(steps: {list(compiled.let_math)})")
        exprs = _intermediate_exprs(compiled, step)
        step_shape = compiled.let_math[step].shape
        full = tuple(out_shape) + tuple(step_shape)
        a = _number_array(value)
        if a is None:
            raise _error(case, f"{key}.{step}", "a number or nested list of numbers")
        if a.shape == full:
            exact = exprs.reshape(full)
        elif a.shape == exprs.shape:
            exact = exprs
        else:
            raise _error(case, f"{key}.{step}", f"the claim has shape {list(a.shape)}; "
                         f"d output / d {step} has shape {list(full)}")
        tv = t.error
        if not t.error:
            tv = t.intermediates.get(step)
            tv = "the step does not require grad" if tv is None else _torch_plain(np.asarray(tv).reshape(a.shape))
        yield f"∂f/∂{step} (let step)", a, exact, tv


def _rounding_note(exact: np.ndarray, claimed: np.ndarray) -> str:
    """`` (1.00000 to 5 decimals)`` when the exact text alone does not show why a claim fails."""
    notes = []
    for e, c in zip(np.ravel(exact), np.ravel(claimed)):
        if e.holds(c) or not e.defined or e.infinite:
            continue
        places = decimals(c)
        r = e.rounded(places)
        if r is not None and r != e.text:
            notes.append(f"{r} to {places} decimal{'s' if places != 1 else ''}")
    return f" (rounded: {', '.join(notes)})" if notes else ""


def _claimed(case: Case, key: str, spec: Any, shape: tuple, what: str) -> np.ndarray:
    a = _number_array(spec)
    if a is None:
        raise _error(case, key, f"{what} must be a finite number or nested list of numbers")
    if a.shape != tuple(shape):
        raise _error(case, key, f"{what} has shape {list(shape)}, the claim has shape {list(a.shape)}")
    return a


# --- differentiable -----------------------------------------------------------------------

def _differentiable(compiled: CompiledCase, claim: Any) -> Result:
    case = compiled.case
    if not isinstance(claim, bool):
        raise _error(case, "expect.differentiable", "`differentiable` is true or false")
    point = _first_point(compiled)
    td = torch.float64
    shown = {n: _plain_floats(v) for n, v in point.items()}
    torch_says, can = None, None
    try:
        leaves = [torch.tensor(np.asarray(point[v.name], dtype=np.float64), dtype=td).requires_grad_(True)
                  for v in case.variables]
        consts = {n: torch.as_tensor(v, dtype=td) for n, v in compiled.const_values.items()}
        out = compiled.forward(leaves, consts, td)
        if not isinstance(out, torch.Tensor) or not out.requires_grad or out.grad_fn is None:
            can, torch_says = False, "the output has no grad_fn (no gradient path to the variables)"
        else:
            grads = torch.autograd.grad(out.sum(), leaves, allow_unused=True)
            if all(g is None for g in grads):
                can, torch_says = False, "no gradient path: every gradient is None"
            else:
                can = True
                torch_says = "gradient " + _fmt({v.name: _torch_plain(_np(g)) if g is not None else "None"
                                                 for v, g in zip(case.variables, grads)})
    except Exception as err:
        classified = classify_error(err)
        if isinstance(classified, CannotDifferentiate):
            can, torch_says = False, f"torch raised: {classified}"
        else:
            row = ClaimRow(label="torch can differentiate it", at=shown, claimed=claim, exact=None,
                           torch=str(classified), holds=None)
            return _result(case, "differentiable", ERROR,
                           f"torch raised while computing the function: {classified}", 0, Details(claim=(row,)))
    jac = _jacobian_exprs(compiled)
    names = compiled.input_names()
    exact = "; ".join(f"∂{out}/∂{col} = {_short(sp.sympify(jac[i, j]))}"
                      for i, out in enumerate(compiled.output_names()) for j, col in enumerate(names))
    exact = exact if len(exact) <= MAX_EXACT_TEXT else exact[:MAX_EXACT_TEXT] + " …"
    holds = can == claim
    row = ClaimRow(label="torch can differentiate it", claim=f"differentiable: {str(claim).lower()}",
                   at=shown, claimed=str(claim).lower(), exact=exact, torch=torch_says, holds=holds)
    word = "can" if can else "cannot"
    message = f"torch {word} differentiate it at {_fmt(shown)}: {torch_says}"
    status = PASS
    if not holds:
        status = FAIL
        message = f"claims differentiable: {str(claim).lower()}, but " + message
    return _result(case, "differentiable", status, message, 1, Details(claim=(row,)))


def _first_point(compiled: CompiledCase) -> dict[str, np.ndarray]:
    case = compiled.case
    if case.points:
        return {v.name: np.asarray(case.points[0][v.name], dtype=np.float64) for v in case.variables}
    rng = np.random.default_rng(case.seed)
    return {v.name: rng.uniform(v.domain[0], v.domain[1], size=v.shape) for v in case.variables}


# --- gradient descent ---------------------------------------------------------------------

# Long on purpose (about 75 lines): builds the exact and torch trajectories and the claimed rows
# of one table together; the rows read all three.
def _descent(compiled: CompiledCase, spec: Any, key: str) -> Result:
    case = compiled.case
    if not isinstance(spec, Mapping) or not {"start", "lr", "steps"} <= set(spec):
        raise _error(case, key, "a descent claim is {start: {variable: value}, lr: number, steps: [...]}")
    extra = [k for k in spec if k not in ("start", "lr", "steps")]
    if extra:
        raise _error(case, key, f"unknown key {extra[0]!r} in a descent claim (keys: start, lr, steps)")
    if compiled.output.ndim:
        raise _error(case, key, "gradient descent needs a scalar output (a loss)")
    if not _is_number(spec["lr"]):
        raise _error(case, f"{key}.lr", "`lr` must be a finite number")
    start_spec = spec["start"]
    start_loss = None
    if isinstance(start_spec, Mapping) and "loss" in start_spec:
        start_spec = {k: v for k, v in start_spec.items() if k != "loss"}
        start_loss = spec["start"]["loss"]
        if not _is_number(start_loss):
            raise _error(case, f"{key}.start", "`loss` must be a finite number")
    start = _read_point(compiled, start_spec, f"{key}.start", "start")
    steps = spec["steps"]
    if not isinstance(steps, list) or not steps:
        raise _error(case, f"{key}.steps", "`steps` must be a non-empty list of {variable: value, loss: value}")
    claims = _step_claims(compiled, steps, f"{key}.steps")
    last = max(k for k, _ in claims)
    if last > MAX_DESCENT_STEPS:
        raise _error(case, f"{key}.steps", f"at most {MAX_DESCENT_STEPS} iterations")

    lr_text = _fmt_num(spec["lr"])
    lr = _rational(spec["lr"])
    dtype = _torch_dtype_name(case)
    wanted_steps = {k for k, _ in claims} | {0}
    exact_path, arithmetic = _exact_descent(compiled, start, lr, last, wanted_steps)
    torch_path, torch_error = _torch_descent(compiled, start, float(exact_number(spec["lr"])), last, dtype)

    wanted = {k: c for k, c in claims}
    if start_loss is not None:
        wanted[0] = {"loss": _claimed(case, f"{key}.start", start_loss, (), "the loss at the start")}
    rows, claim_rows, failures, count = [], [], [], 0
    for k in sorted(set(wanted) | {0}):
        claimed = wanted.get(k, {})
        exact_state = exact_path[k]
        tstate = torch_path[k] if k < len(torch_path) else None
        row_claimed = {n: v for n, v in claimed.items()}
        row_exact, row_torch, row_holds = {}, {}, True if claimed else None
        shown_names = [v.name for v in case.variables] + (["loss"] if "loss" in claimed or k == 0 else [])
        for name in shown_names:
            ex = exact_state[name]
            row_exact[name] = _texts(ex)
            row_torch[name] = (_torch_plain(tstate[name]) if tstate is not None and name in tstate
                               else (torch_error or "—"))
            if name in claimed:
                c = claimed[name]
                holds = bool(np.all(np.frompyfunc(lambda e, v: e.holds(v), 2, 1)(ex, c)))
                count += c.size
                row_holds = row_holds and holds
                label = "loss" if name == "loss" else name
                claim_rows.append({"label": f"step {k} (lr {lr_text}): {label}" if k else f"start: {label}",
                                   "claim": f"{label} = {_fmt(c)} after {k} step{'s' if k != 1 else ''}",
                                   "claimed": _as_written(c), "exact": _texts(ex), "exact_float": _floats(ex),
                                   "torch": row_torch[name], "method": _places_text(c), "holds": holds})
                if not holds:
                    failures.append(f"claims {label} = {_fmt(c)} after step {k}; exact {_fmt(_texts(ex))}"
                                    f"{_rounding_note(ex, c)}, "
                                    f"torch ({dtype}) {_fmt(row_torch[name])}")
        rows.append({"step": k, "claimed": {n: _as_written(v) for n, v in row_claimed.items()} or None,
                     "exact": row_exact, "torch": row_torch, "holds": row_holds})
    details = Details(trajectory=tuple(DescentStep(**row) for row in rows), claim=_rows(claim_rows), lr=spec["lr"],
                      arithmetic=arithmetic, start={n: _plain(a) for n, a in start.items()}, torch_dtype=dtype,
                      torch_error=torch_error if torch_error else UNSET)
    head = f"descent from {_fmt({n: _plain(a) for n, a in start.items()})} with lr {lr_text}"
    if failures:
        status, message = FAIL, f"{head}: " + "; ".join(failures)
    else:
        status, message = PASS, f"{head}: all {len(claims)} claimed step(s) hold"
    return _result(case, "descent", status, message, count, details)


def _places_text(c: np.ndarray) -> str:
    places = sorted({decimals(v) for v in c.ravel()})
    if len(places) == 1:
        return f"rounded to {places[0]} decimal{'s' if places[0] != 1 else ''}"
    return "rounded to the decimals written"


def _step_claims(compiled: CompiledCase, steps: list, key: str) -> list[tuple[int, dict[str, np.ndarray]]]:
    """Each claimed step as (iteration number, {variable or 'loss': numbers}); an entry may
    say ``after: n`` to claim the iterate after n steps (otherwise it is the next step)."""
    case = compiled.case
    names = {v.name: v for v in case.variables}
    out, k = [], 0
    for i, step in enumerate(steps):
        where = f"{key}.{i}"
        if not isinstance(step, Mapping) or not step:
            raise _error(case, where, "each step is a mapping {variable: value, loss: value}")
        step = dict(step)
        if "after" in step:
            after = step.pop("after")
            if not isinstance(after, int) or isinstance(after, bool) or after <= k:
                raise _error(case, where, f"`after` must be a whole number greater than {k}")
            k = after
        else:
            k += 1
        claimed = {}
        for name, value in step.items():
            if name == "loss":
                shape: tuple = ()
            elif name in names:
                shape = names[name].shape
            else:
                raise _error(case, where, f"{name!r} is neither a variable nor `loss`")
            claimed[name] = _claimed(case, where, value, shape, f"{name} of step {k}")
        if not claimed:
            raise _error(case, where, "the step claims nothing")
        out.append((k, claimed))
    return out


def _exact_descent(compiled: CompiledCase, start: Mapping[str, np.ndarray], lr: sp.Rational,
                   steps: int, keep: set[int]) -> tuple[dict[int, dict[str, np.ndarray]], str]:
    """The iterates in ``keep`` (of 0..steps), each with its loss, as arrays of :class:`Exact`;
    and how they were computed. Rationals stay rational; an iterate that is not rational, or
    whose rationals outgrow MAX_RATIONAL_BITS, continues with EXACT_DIGITS significant digits."""
    case = compiled.case
    jac = [sp.sympify(g) for g in _jacobian_exprs(compiled)[0]]
    offsets = _offsets(compiled)
    consts = _constant_subs(compiled)
    loss_expr = sp.sympify(compiled.output[()])
    # constants first, once: the iteration then only substitutes the variables
    jac = [g.xreplace(consts) for g in jac]
    loss_expr = loss_expr.xreplace(consts)
    syms = [s for v in case.variables for s in compiled.var_symbols[v.name].ravel()]
    state = [_rational(x) for v in case.variables for x in start[v.name].ravel()]

    def record(values: Sequence[sp.Expr], loss: sp.Expr) -> dict[str, np.ndarray]:
        entry = {}
        for v in case.variables:
            lo, hi = offsets[v.name]
            entry[v.name] = _exact_array(np.array(list(values[lo:hi]), dtype=object).reshape(v.shape))
        entry["loss"] = _exact_array(np.array(loss, dtype=object))
        return entry

    fast = _arithmetic_descent(jac, loss_expr, syms, state, lr, steps, keep, record)
    if fast is not None:
        return fast
    path: dict[int, dict[str, np.ndarray]] = {}
    switched: int | None = None
    for k in range(steps + 1):
        subs = dict(zip(syms, state))
        if k in keep:
            path[k] = record(state, _tidy(loss_expr.xreplace(subs)))
        if k == steps:
            break
        grad = [_tidy(g.xreplace(subs)) for g in jac]
        state = [_tidy(x - lr * d) for x, d in zip(state, grad)]
        if switched is None and any(not x.is_Rational for x in state):
            switched = k + 1
    return path, _arithmetic_text(switched)


def _arithmetic_text(switched: int | None) -> str:
    return ("exact rational arithmetic" if switched is None else
            f"exact rational arithmetic, then {EXACT_DIGITS} significant digits from step {switched}")


class _FractionPrinter(PythonCodePrinter):
    """Python code in which every rational constant is a ``Fraction``: exact arithmetic."""

    def _print_Rational(self, expr):
        return f"Fraction({expr.p}, {expr.q})"

    def _print_Integer(self, expr):
        return str(expr.p)


def _is_arithmetic(expr: sp.Expr, syms: Sequence[sp.Symbol]) -> bool:
    """Only +, −, ×, ÷ and whole powers of the variables and rational numbers."""
    allowed = set(syms)
    for node in sp.preorder_traversal(expr):
        if isinstance(node, (sp.Add, sp.Mul, sp.Rational)) or node in allowed:
            continue
        if isinstance(node, sp.Pow) and node.exp.is_Integer:
            continue
        return False
    return True


def _collected(expr: sp.Expr, syms) -> sp.Expr:
    """A polynomial with its data summed into a few coefficients (the gradient of a mean
    squared error over ten points is a·w + b·c + d), when that is no bigger: exact rational
    arithmetic then reduces fractions a few times per step, not once per data point."""
    if len(syms) > 8 or not expr.is_polynomial(*syms):
        return expr
    expanded = sp.expand(expr)
    return expanded if sp.count_ops(expanded) <= sp.count_ops(expr) else expr


def _arithmetic_descent(jac, loss_expr, syms, state, lr, steps: int, keep: set[int], record):
    """The same iteration as :func:`_exact_descent`, compiled, for a loss whose gradient is
    rational arithmetic (every polynomial or rational loss, the notes' linear regressions):
    Python ``Fraction`` s while they fit in MAX_RATIONAL_BITS, then mpmath at EXACT_DIGITS
    digits. 500 steps take milliseconds instead of a third of a second. None when the loss
    is not of that kind, or the arithmetic divides by zero (the general path then decides)."""
    exprs = list(jac) + [loss_expr]
    if not syms or not all(_is_arithmetic(e, syms) for e in exprs):
        return None
    exprs = [_collected(e, syms) for e in exprs]
    exact = sp.lambdify(syms, exprs, modules=[{"Fraction": Fraction}], printer=_FractionPrinter, cse=True)
    # the rounded phase takes the rational constants as arguments, converted once
    ratios = sorted({r for e in exprs for r in e.atoms(sp.Rational) if not r.is_Integer}, key=str)
    holders = sp.symbols(f"_c0:{len(ratios)}") if ratios else ()
    swap = dict(zip(ratios, holders))
    rounded = sp.lambdify(list(syms) + list(holders), [e.xreplace(swap) for e in exprs], modules="mpmath", cse=True)
    x = [Fraction(int(v.p), int(v.q)) for v in state]
    rate = Fraction(int(lr.p), int(lr.q))
    path: dict[int, dict[str, np.ndarray]] = {}
    switched: int | None = None
    try:
        for k in range(steps + 1):
            if switched is None:
                *grad, loss = exact(*x)
                if k in keep:
                    path[k] = record([sp.Rational(v.numerator, v.denominator) for v in x],
                                     _tidy(sp.Rational(Fraction(loss).numerator, Fraction(loss).denominator)))
                if k == steps:
                    break
                x = [v - rate * g for v, g in zip(x, grad)]
                if any(max(abs(v.numerator).bit_length(), v.denominator.bit_length()) > MAX_RATIONAL_BITS
                       for v in x):
                    switched = k + 1
                    with mpmath.workdps(EXACT_DIGITS):
                        x = [mpmath.mpf(v.numerator) / v.denominator for v in x]
                        constants = [mpmath.mpf(int(r.p)) / int(r.q) for r in ratios]
                        step = mpmath.mpf(rate.numerator) / rate.denominator
                continue
            with mpmath.workdps(EXACT_DIGITS):
                *grad, loss = rounded(*x, *constants)
                if k in keep:
                    path[k] = record([sp.Float(v, EXACT_DIGITS) for v in x], sp.Float(loss, EXACT_DIGITS))
                if k == steps:
                    break
                x = [v - step * g for v, g in zip(x, grad)]
    except ZeroDivisionError:
        return None
    return path, _arithmetic_text(switched)


def _tidy(x: sp.Expr) -> sp.Expr:
    """Keep rationals exact while they are of a reasonable size; evaluate anything else to
    EXACT_DIGITS digits so that the expressions of later iterates stay small."""
    x = sp.sympify(x)
    if x.is_Rational and max(abs(int(x.p)).bit_length(), int(x.q).bit_length()) <= MAX_RATIONAL_BITS:
        return x
    return sp.Float(sp.N(x, EXACT_DIGITS), EXACT_DIGITS)


def _torch_descent(compiled: CompiledCase, start: Mapping[str, np.ndarray], lr: float, steps: int,
                   dtype: str) -> tuple[list[dict[str, np.ndarray]], str | None]:
    """Iterates with ``torch.autograd.grad``; stops at the first error (returned as text)."""
    case = compiled.case
    td = torch_dtype(dtype)
    consts = {n: torch.as_tensor(v, dtype=td) for n, v in compiled.const_values.items()}
    xs = [torch.tensor(np.asarray(_plain(start[v.name]), dtype=np.float64), dtype=td) for v in case.variables]
    path = []
    try:
        for k in range(steps + 1):
            leaves = [x.detach().clone().requires_grad_(True) for x in xs]
            loss = compiled.forward(leaves, consts, td)
            entry = {v.name: _np(x) for v, x in zip(case.variables, leaves)}
            entry["loss"] = _np(loss)
            path.append(entry)
            if k == steps:
                break
            grads = torch.autograd.grad(loss, leaves, allow_unused=True)
            with torch.no_grad():
                xs = [x - lr * (g if g is not None else torch.zeros_like(x)) for x, g in zip(leaves, grads)]
    except Exception as err:
        return path, f"torch raised: {classify_error(err)}"
    return path, None
