"""Numbers in claims: read as the exact decimal they are written as, compared after rounding
half-even to the places written, and shown; :class:`Exact` is an exact value with its text."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

MAX_EXACT_TEXT = 300         # characters of an exact closed form shown in a report
EXACT_DIGITS = 60            # digits kept when an exact iterate is not rational
MAX_SIMPLIFY_VALUE_OPS = 60  # exact values this small are simplified before they are shown
MAX_RATIONAL_DIGITS = 60     # longer rationals are shown as decimals


def is_number(v: Any) -> bool:
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


def rational(v: Any) -> sp.Rational:
    f = exact_number(v)
    return sp.Rational(f.numerator, f.denominator)


def number_array(value: Any, shape: tuple[int, ...] | None = None) -> np.ndarray | None:
    """A number or nested list of numbers as an object array of the original numbers;
    None when it is not one (or, with ``shape``, not of that shape)."""
    try:
        a = np.array(value, dtype=object)
    except (ValueError, TypeError):
        return None
    if a.dtype != object or not all(is_number(v) for v in a.ravel()):
        return None
    if any(isinstance(v, (list, tuple)) for v in a.ravel()):
        return None
    if shape is not None and a.shape != tuple(shape):
        return None
    return a


def plain(a: np.ndarray) -> Any:
    """An object array as a number or nested lists."""
    return a[()] if a.ndim == 0 else a.tolist()


def plain_floats(a: np.ndarray) -> Any:
    a = np.asarray(a, dtype=np.float64)
    return float(a) if a.ndim == 0 else a.tolist()


def as_written(a: np.ndarray) -> Any:
    """Claimed numbers for a report: ints as ints, floats as the text written in the case
    file when the loader kept it (``0.0000e+00``, ``72.``), else as floats."""
    def one(v):
        text = getattr(v, "text", None)
        return text.strip() if text else v
    if a.ndim == 0:
        return one(a[()])
    return plain(np.frompyfunc(one, 1, 1)(a))


def fmt_num(v: Any) -> str:
    if getattr(v, "text", None):
        return v.text.strip()
    if isinstance(v, float):
        return repr(v)
    return str(v)


def fmt(value: Any) -> str:
    if isinstance(value, np.ndarray):
        value = plain(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={fmt(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    return fmt_num(value)


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
            self.text = f"undefined ({short(expr)})"
            return
        self.float = float(value)
        self.fraction = None  # computed on demand at the precision a claim needs
        if expr.is_Float:  # a high-precision iterate, not a closed form
            self.text = f"{sp.N(expr, 17)} (to {EXACT_DIGITS} digits)"
            return
        closed = short(expr)
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


def short(expr: sp.Expr) -> str:
    text = str(expr)
    return text if len(text) <= MAX_EXACT_TEXT else text[:MAX_EXACT_TEXT] + " …"


def exact_array(exprs: np.ndarray) -> np.ndarray:
    out = np.empty(exprs.shape, dtype=object)
    for idx in np.ndindex(exprs.shape):
        out[idx] = Exact(sp.sympify(exprs[idx]))
    return out


def texts(a: np.ndarray) -> Any:
    return plain(np.frompyfunc(lambda e: e.text, 1, 1)(a)) if a.ndim else a[()].text


def floats(a: np.ndarray) -> Any:
    return plain(np.frompyfunc(lambda e: e.float, 1, 1)(a)) if a.ndim else a[()].float


def rounding_note(exact: np.ndarray, claimed: np.ndarray) -> str:
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


def places_text(c: np.ndarray) -> str:
    places = sorted({decimals(v) for v in c.ravel()})
    if len(places) == 1:
        return f"rounded to {places[0]} decimal{'s' if places[0] != 1 else ''}"
    return "rounded to the decimals written"
