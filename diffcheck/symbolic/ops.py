"""THE op table: one row per operation a :class:`~diffcheck.symbolic.dag.Program` node can be.

Every exact reading of an op is derived from its row:

* ``sympy``: the SymPy class a node is read from and rebuilds to (:mod:`.dag`);
* ``symengine``: the SymEngine class name read into the op, and ``se_derives``: whether
  SymEngine differentiates it exactly like SymPy, so :mod:`.derive` may use SymEngine;
* ``ld``: the extended-precision kernel of :mod:`diffcheck.reference.extended`: an
  :class:`Elementwise` numpy function with a bound on |f'| (the error slope), or
  ``STRUCTURAL`` (a kernel of its own there, named like the op);
* ``mp``: the mpmath kernel of :mod:`diffcheck.reference.proof`, likewise;
* ``log``: True when :mod:`diffcheck.reference.logdomain` has a rule for it; otherwise the
  log-domain pass reads its arguments back in linear form (which is always correct; it only
  proves less beyond the extended range);
* ``kinks`` and ``singular``: where the op's derivative breaks and where the op itself is
  infinite or undefined (documentation; the kinks of a case are found from its expressions);
* ``gap``: why a reading is missing. A missing ``ld`` kernel makes the extended pass leave
  the value unproven, so mpmath computes it (the fallback costs a point-by-point mpmath
  evaluation; ``docs/library.md`` gives the measured cost).

``tests/test_ops.py`` asserts that every op has every reading or a declared gap, and that the
reference's kernel tables are exactly the ones this table names. Adding an elementary
function is a row here and a row in :mod:`diffcheck.language.library`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable

import mpmath
import numpy as np
import sympy as sp


@dataclass(frozen=True)
class Elementwise:
    """A kernel applied value by value: ``fn(*args)``, and ``slope(*args, value)``, a bound on
    |∂f/∂arg| (a number for one argument, a tuple for several) from the arguments and the value."""

    fn: Callable[..., Any]
    slope: Callable[..., Any]


#: the reading is a kernel of its own in the reference module (named like the op)
STRUCTURAL = "structural"


@dataclass(frozen=True)
class Op:
    name: str
    arity: int | None = 1              # None: any number of arguments
    sympy: type | None = None
    symengine: str | None = None
    se_derives: bool = False
    ld: Elementwise | str | None = STRUCTURAL
    mp: Elementwise | str | None = STRUCTURAL
    log: bool = False
    kinks: str = ""
    singular: str = ""
    gap: str = ""
    mp_edge: Callable[[Any], Any] | None = None  # distance to a branch point (mp: unsure inside the error)
    internal: bool = False             # made by the reference's rewrites, never read from SymPy


def _mp_sign(x):
    return mpmath.mpf(mpmath.sign(x))


def _one(*_):
    return 1


_NO_LD = "numpy has no extended-precision kernel: mpmath computes it"


# --- fmod and remainder: functions with jumps, and derivatives of their own ------------------
# SymPy cannot differentiate floor or trunc, and x − y·trunc(x/y) would leave their derivatives
# unevaluated. So each is a SymPy function whose derivative is written out: ∂/∂x = 1 and
# ∂/∂y = −trunc(x/y) = (fmod(x, y) − x)/y (remainder: −floor(x/y), likewise), each times a
# guard that is 1 off the jumps and undefined on them. Where x/y is an integer (fmod: a nonzero
# one) the function jumps: it has no derivative there, whatever the one-sided limits of the
# derivative say, so those points are not compared (pipeline: a guard undefined at the point is
# not replaced by a limit). Exact for exact arguments (the case's variables): fmod and
# remainder of two binary numbers are computed in rational arithmetic.

def _fraction(v) -> Fraction:
    if not mpmath.isfinite(v):
        raise ValueError("not finite")
    sign, man, exp, _ = mpmath.mpf(v)._mpf_
    return Fraction((-1) ** sign * int(man)) * (Fraction(2) ** int(exp))


def _mp_mod(x, y, floor: bool):
    fx, fy = _fraction(x), _fraction(y)
    if fy == 0:
        raise ValueError("fmod/remainder by 0")
    q = fx / fy
    r = fx - fy * (math.floor(q) if floor else math.trunc(q))
    return mpmath.mpf(r.numerator) / r.denominator


def _mp_jump(f, s):
    if f == 0 and s != 0:
        raise ValueError("on a jump: no derivative")
    return mpmath.mpf(1)


def _mod_slope(x, y, v):
    return (1, abs((x - v) / y) + 1) if y else (mpmath.inf, mpmath.inf)


class jump_guard(sp.Function):
    """jump_guard(f, s): 1, undefined where f = 0 and s ≠ 0 (a jump of fmod or remainder)."""

    nargs = 2

    def fdiff(self, argindex=1):
        return sp.S.Zero

    @staticmethod
    def _imp_(f, s):
        return _mp_jump(mpmath.mpf(f), mpmath.mpf(s))


class torch_fmod(sp.Function):
    """x − y·trunc(x/y), torch.fmod (the sign of x)."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if x.is_Rational and y.is_Rational and y != 0:
            return x - y * sp.Integer(math.trunc(Fraction(int(x.p), int(x.q)) / Fraction(int(y.p), int(y.q))))
        return None

    def fdiff(self, argindex=1):
        x, y = self.args
        guard = jump_guard(self, x)
        return guard if argindex == 1 else guard * (self - x) / y

    @staticmethod
    def _imp_(x, y):
        return _mp_mod(mpmath.mpf(x), mpmath.mpf(y), False)


class torch_remainder(sp.Function):
    """x − y·floor(x/y), torch.remainder (the sign of y, Python's %)."""

    nargs = 2

    @classmethod
    def eval(cls, x, y):
        if x.is_Rational and y.is_Rational and y != 0:
            return x - y * sp.floor(x / y)
        return None

    def fdiff(self, argindex=1):
        x, y = self.args
        guard = jump_guard(self, sp.S.One)
        return guard if argindex == 1 else guard * (self - x) / y

    @staticmethod
    def _imp_(x, y):
        return _mp_mod(mpmath.mpf(x), mpmath.mpf(y), True)


_MOD_GAP = (_NO_LD + "; exact for exact arguments (rational arithmetic); an argument's own rounding error "
            "is not bounded across a jump")

OPS_TABLE: tuple[Op, ...] = (
    # leaves (values of the plan; mpmath reads them exactly)
    Op("sym", 0, ld=STRUCTURAL, mp=STRUCTURAL),
    Op("num", 0), Op("float", 0), Op("const", 0), Op("special", 0), Op("bool", 0),
    Op("foreign", 0, ld=None, mp=STRUCTURAL,
       gap="any other SymPy expression: mpmath through lambdify, 3/4 of the digits trusted"),
    # arithmetic
    Op("add", None, symengine="Add", log=True),
    Op("mul", None, symengine="Mul", log=True),
    Op("pow", 2, log=True, singular="0 to a negative power; a negative base to a fraction"),
    # elementary functions
    Op("exp", sympy=sp.exp, se_derives=True, mp=Elementwise(mpmath.exp, lambda t, v: abs(v)), log=True),
    Op("log", sympy=sp.log, symengine="log", se_derives=True,
       ld=Elementwise(np.log, lambda t, v: 1 / np.abs(t)),
       mp=Elementwise(mpmath.log, lambda t, v: 1 / abs(t)), log=True, mp_edge=lambda t: t,
       singular="−inf at 0, undefined below"),
    Op("sin", sympy=sp.sin, symengine="sin", se_derives=True,
       ld=Elementwise(np.sin, _one), mp=Elementwise(mpmath.sin, _one)),
    Op("cos", sympy=sp.cos, symengine="cos", se_derives=True,
       ld=Elementwise(np.cos, _one), mp=Elementwise(mpmath.cos, _one)),
    Op("tan", sympy=sp.tan, symengine="tan", se_derives=True,
       ld=Elementwise(np.tan, lambda t, v: 1 + v * v), mp=Elementwise(mpmath.tan, lambda t, v: 1 + v * v),
       singular="poles at π/2 + kπ"),
    Op("sinh", sympy=sp.sinh, symengine="sinh", se_derives=True,
       ld=Elementwise(np.sinh, lambda t, v: np.abs(v) + 1), mp=Elementwise(mpmath.sinh, lambda t, v: abs(v) + 1)),
    Op("cosh", sympy=sp.cosh, symengine="cosh", se_derives=True,
       ld=Elementwise(np.cosh, lambda t, v: np.abs(v)), mp=Elementwise(mpmath.cosh, lambda t, v: abs(v))),
    Op("tanh", sympy=sp.tanh, symengine="tanh", se_derives=True,
       ld=Elementwise(np.tanh, _one), mp=Elementwise(mpmath.tanh, _one), log=True),
    Op("asinh", sympy=sp.asinh, symengine="asinh", se_derives=True,
       ld=Elementwise(np.arcsinh, lambda t, v: 1 / np.sqrt(1 + t * t)), mp=Elementwise(mpmath.asinh, _one)),
    Op("atan", sympy=sp.atan, symengine="atan", se_derives=True,
       ld=Elementwise(np.arctan, lambda t, v: 1 / (1 + t * t)), mp=Elementwise(mpmath.atan, _one)),
    Op("erf", sympy=sp.erf, symengine="erf", se_derives=True, ld=None,
       mp=Elementwise(mpmath.erf, lambda t, v: 2), gap=_NO_LD),
    Op("abs", sympy=sp.Abs, symengine="Abs", mp=Elementwise(mpmath.fabs, _one), log=True, kinks="0"),
    Op("sign", sympy=sp.sign, symengine="sign", kinks="jump at 0"),
    # the rest of the elementary functions and torch.special (read by SymPy only: SymEngine
    # writes some of their derivatives in other forms)
    Op("asin", sympy=sp.asin,
       ld=Elementwise(np.arcsin, lambda t, v: 1 / np.sqrt(np.abs(1 - t * t))),
       mp=Elementwise(mpmath.asin, lambda t, v: 1 / mpmath.sqrt(abs(1 - t * t))),
       mp_edge=lambda t: 1 - abs(t), singular="derivative infinite at ±1; undefined outside [−1, 1]"),
    Op("acos", sympy=sp.acos,
       ld=Elementwise(np.arccos, lambda t, v: 1 / np.sqrt(np.abs(1 - t * t))),
       mp=Elementwise(mpmath.acos, lambda t, v: 1 / mpmath.sqrt(abs(1 - t * t))),
       mp_edge=lambda t: 1 - abs(t), singular="derivative infinite at ±1; undefined outside [−1, 1]"),
    Op("acosh", sympy=sp.acosh,
       ld=Elementwise(np.arccosh, lambda t, v: 1 / np.sqrt(np.abs(t * t - 1))),
       mp=Elementwise(mpmath.acosh, lambda t, v: 1 / mpmath.sqrt(abs(t * t - 1))),
       mp_edge=lambda t: t - 1, singular="derivative infinite at 1; undefined below"),
    Op("atanh", sympy=sp.atanh,
       ld=Elementwise(np.arctanh, lambda t, v: 1 / np.abs(1 - t * t)),
       mp=Elementwise(mpmath.atanh, lambda t, v: 1 / abs(1 - t * t)),
       mp_edge=lambda t: 1 - abs(t), singular="±inf at ±1; undefined outside"),
    Op("atan2", 2, sympy=sp.atan2, ld=None,
       mp=Elementwise(mpmath.atan2, lambda y, x, v: (1 / mpmath.sqrt(x * x + y * y),) * 2),
       gap=_NO_LD, kinks="jump along the negative x axis", singular="undefined at (0, 0)"),
    Op("erfc", sympy=sp.erfc, ld=None, mp=Elementwise(mpmath.erfc, lambda t, v: 2), gap=_NO_LD),
    Op("erfinv", sympy=sp.erfinv, ld=None,
       mp=Elementwise(mpmath.erfinv, lambda t, v: mpmath.sqrt(mpmath.pi) / 2 * mpmath.exp(v * v)),
       mp_edge=lambda t: 1 - abs(t), gap=_NO_LD, singular="±inf at ±1"),
    Op("loggamma", sympy=sp.loggamma, ld=None,
       mp=Elementwise(mpmath.loggamma, lambda t, v: abs(mpmath.digamma(t)) + 1),
       gap=_NO_LD, singular="+inf at 0, −1, −2, …"),
    Op("polygamma", 2, sympy=sp.polygamma, ld=None,
       mp=Elementwise(mpmath.polygamma, lambda n, t, v: (0, abs(mpmath.polygamma(n + 1, t)))),
       gap=_NO_LD, singular="poles at 0, −1, −2, …"),
    Op("besseli", 2, sympy=sp.besseli, ld=None,
       mp=Elementwise(mpmath.besseli, lambda nu, t, v: (0, abs(mpmath.besseli(nu - 1, t)) + abs(mpmath.besseli(nu + 1, t)))),
       gap=_NO_LD),
    Op("gamma", sympy=sp.gamma, ld=None,
       mp=Elementwise(mpmath.gamma, lambda t, v: abs(v * mpmath.digamma(t))),
       gap=_NO_LD, singular="poles at 0, −1, −2, …"),
    Op("lowergamma", 2, sympy=sp.lowergamma, ld=None,
       mp=Elementwise(lambda a, t: mpmath.gammainc(a, 0, t),
                      lambda a, t, v: (0, abs(t ** (a - 1) * mpmath.exp(-t)))),
       gap=_NO_LD + " (the slope in a is not bounded: a is a constant of the case)"),
    Op("uppergamma", 2, sympy=sp.uppergamma, ld=None,
       mp=Elementwise(lambda a, t: mpmath.gammainc(a, t),
                      lambda a, t, v: (0, abs(t ** (a - 1) * mpmath.exp(-t)))),
       gap=_NO_LD + " (the slope in a is not bounded: a is a constant of the case)"),
    Op("sinc", sympy=sp.sinc, ld=None, mp=Elementwise(mpmath.sinc, _one), gap=_NO_LD,
       singular="removable at 0 (value 1)"),
    Op("fmod", 2, sympy=torch_fmod, ld=None, mp=Elementwise(lambda x, y: _mp_mod(x, y, False), _mod_slope),
       gap=_MOD_GAP, kinks="jumps where x/y is a nonzero integer", singular="undefined at y = 0"),
    Op("remainder", 2, sympy=torch_remainder, ld=None, mp=Elementwise(lambda x, y: _mp_mod(x, y, True), _mod_slope),
       gap=_MOD_GAP, kinks="jumps where x/y is an integer", singular="undefined at y = 0"),
    Op("jump", 2, sympy=jump_guard, ld=None, mp=Elementwise(_mp_jump, lambda f, s, v: (0, 0)), gap=_NO_LD,
       singular="undefined on the jumps of fmod and remainder (their derivatives' guard)"),
    # forms the extended-precision pass rewrites to (never read from SymPy)
    Op("log1p", ld=Elementwise(np.log1p, lambda t, v: 1 / np.abs(1 + t)),
       mp=Elementwise(mpmath.log1p, lambda t, v: 1 / abs(1 + t)), log=True, mp_edge=lambda t: t + 1,
       internal=True),
    Op("expm1", ld=Elementwise(np.expm1, lambda t, v: np.abs(v) + 1),
       mp=Elementwise(mpmath.expm1, lambda t, v: abs(v) + 1), log=True, internal=True),
    Op("sech2", log=True, internal=True),
    # steps and branches
    Op("heaviside", 2, kinks="jump at 0"),
    Op("dirac", 1, kinks="0"),
    Op("max", None, symengine="Max", kinks="where two arguments are equal"),
    Op("min", None, symengine="Min", kinks="where two arguments are equal"),
    Op("piecewise", None, symengine="Piecewise", kinks="where a condition changes"),
    Op("and", None, symengine="And"), Op("or", None, symengine="Or"), Op("not", 1, symengine="Not"),
    Op("gt", 2, sympy=sp.StrictGreaterThan), Op("ge", 2, sympy=sp.GreaterThan),
    Op("lt", 2, sympy=sp.StrictLessThan, symengine="StrictLessThan"),
    Op("le", 2, sympy=sp.LessThan, symengine="LessThan"),
    Op("eq", 2, sympy=sp.Equality, symengine="Equality"),
    Op("ne", 2, sympy=sp.Unequality, symengine="Unequality"),
)

OPS: dict[str, Op] = {op.name: op for op in OPS_TABLE}

RELATION_NAMES = ("gt", "ge", "lt", "le", "eq", "ne")

#: op → SymPy class of the functions a node rebuilds to with ``cls(*args)``
FUNCS: dict[str, type] = {op.name: op.sympy for op in OPS_TABLE
                          if op.sympy is not None and op.name not in RELATION_NAMES}
#: relation op → SymPy class
RELATIONS: dict[str, type] = {name: OPS[name].sympy for name in RELATION_NAMES}
#: SymEngine class name → op
SYMENGINE_NAMES: dict[str, str] = {op.symengine: op.name for op in OPS_TABLE
                                   if op.symengine and op.name not in RELATION_NAMES}
SYMENGINE_RELATIONS: dict[str, str] = {OPS[n].symengine: n for n in RELATION_NAMES if OPS[n].symengine}
#: SymPy functions whose SymEngine derivative is the same as SymPy's
SYMENGINE_FUNCTIONS = frozenset(op.sympy for op in OPS_TABLE if op.se_derives)


def elementwise(reading: str) -> dict[str, Elementwise]:
    """The ops whose ``reading`` ("ld" or "mp") is an :class:`Elementwise` kernel."""
    return {op.name: getattr(op, reading) for op in OPS_TABLE if isinstance(getattr(op, reading), Elementwise)}


def structural(reading: str) -> frozenset[str]:
    """The ops whose ``reading`` is a kernel of its own in the reference."""
    return frozenset(op.name for op in OPS_TABLE if getattr(op, reading) == STRUCTURAL)


def gaps(reading: str) -> frozenset[str]:
    """The ops with no ``reading`` (each with its reason in ``gap``)."""
    return frozenset(op.name for op in OPS_TABLE if getattr(op, reading) is None)

