"""The op table: every op has every exact reading or a declared gap, and every reading the
reference uses is derived from it."""

from __future__ import annotations

import mpmath
import numpy as np
import pytest
import sympy as sp

from diffcheck.reference import extended, logdomain, proof
from diffcheck.reference.mp import MODULES
from diffcheck.symbolic import dag, derive
from diffcheck.symbolic.ops import (FUNCS, OPS, OPS_TABLE, STRUCTURAL, SYMENGINE_FUNCTIONS, Elementwise, gaps)

LEAVES = {"sym", "num", "float", "const", "special", "bool", "foreign"}

# points inside each function's domain (for the kernels' agreement and their slopes)
POINTS = {
    "exp": [-3, 0.5, 20], "log": [0.01, 1.5, 300], "sin": [-2, 0.3, 7], "cos": [-2, 0.3, 7],
    "tan": [-1.2, 0.3, 1.5], "sinh": [-3, 0.5, 9], "cosh": [-3, 0.5, 9], "tanh": [-3, 0.5, 9],
    "asinh": [-3, 0.5, 90], "atan": [-3, 0.5, 90], "erf": [-2, 0.3, 3], "abs": [-2, 3],
    "asin": [-0.9, 0.2, 0.99], "acos": [-0.9, 0.2, 0.99], "acosh": [1.01, 2, 50],
    "atanh": [-0.9, 0.2, 0.99], "erfc": [-2, 0.3, 5], "erfinv": [-0.9, 0.2, 0.99],
    "loggamma": [0.1, 2.5, 40], "sinc": [-2, 0.3, 7], "log1p": [-0.5, 0.001, 30],
    "expm1": [-3, 1e-5, 20], "atan2": [(1, 2), (-1, -0.5), (3, -4)], "fmod": [(5.5, 2), (-7.5, 2), (1e300, 3.3)],
    "remainder": [(5.5, 2), (-7.5, 2), (-7.5, -2.25)], "jump": [(1.5, 2), (0.5, 0), (-3, 1)], "polygamma": [(0, 0.3), (1, 2.5), (2, 7)],
    "besseli": [(0, 0.3), (1, 2.5), (2, 7)], "gamma": [-2.5, 0.3, 7],
    "lowergamma": [(0.75, 0.3), (2.5, 1.5), (3, 7)], "uppergamma": [(0.75, 0.3), (2.5, 1.5), (3, 7)],
}


def test_every_op_has_every_reading_or_a_declared_gap():
    for op in OPS_TABLE:
        for reading in ("ld", "mp"):
            value = getattr(op, reading)
            assert value is None or value == STRUCTURAL or isinstance(value, Elementwise), (op.name, reading)
            if value is None:
                assert op.gap, f"{op.name}: no {reading} kernel and no gap declared"
        if op.name not in LEAVES and not op.internal:
            assert op.sympy is not None or op.symengine is not None or op.name in {
                "pow", "heaviside", "dirac"}, op.name  # read from SymPy by its shape (dag.from_sympy)


def test_the_reference_kernels_are_the_ones_the_table_names():
    non_leaf = {op.name for op in OPS_TABLE} - LEAVES
    assert set(extended.KERNELS) - {"foreign"} == non_leaf
    assert {n for n, k in extended.KERNELS.items() if k is extended._k_gap} == gaps("ld")
    assert set(logdomain.LOG_KERNELS) == {op.name for op in OPS_TABLE if op.log}
    assert proof.MP_KERNELS == {op.name for op in OPS_TABLE if op.mp is not None}
    assert not gaps("mp"), "every op has an mpmath kernel: mpmath is the fallback of every gap"


def test_dag_and_derive_tables_come_from_the_op_table():
    assert set(dag._SYMPY_FUNCS.values()) == set(FUNCS) <= set(OPS)
    assert set(dag._SE_FUNCS.values()) <= set(OPS)
    assert SYMENGINE_FUNCTIONS == derive.SYMENGINE_FUNCTIONS
    assert all(OPS[dag._SYMPY_FUNCS[cls]].se_derives for cls in SYMENGINE_FUNCTIONS)


def _args(op, point):
    return point if isinstance(point, tuple) else (point,)


@pytest.mark.parametrize("name", sorted(n for n, op in OPS.items() if isinstance(op.mp, Elementwise)))
def test_mpmath_kernel_and_slope(name):
    """The mpmath kernel is SymPy's function (as lambdify prints it), and the slope bounds |f'|."""
    op = OPS[name]
    assert name in POINTS, f"add sample points for {name}"
    for point in POINTS[name]:
        args = _args(op, point)
        with mpmath.workdps(40):
            margs = [mpmath.mpf(a) for a in args]
            v = op.mp.fn(*margs)
            if op.sympy is not None:
                syms = sp.symbols(f"a0:{len(args)}", real=True)
                f = sp.lambdify(syms, op.sympy(*syms), modules=MODULES)
                assert abs(f(*margs) - v) <= mpmath.mpf(10) ** -30 * (1 + abs(v)), (name, point)
            slopes = op.mp.slope(*margs, v)
            slopes = slopes if isinstance(slopes, tuple) else (slopes,)
            k = len(args) - 1  # the last argument is the variable one
            d = mpmath.diff(lambda t: op.mp.fn(*(margs[:k] + [t])), margs[k])
            assert abs(d) <= slopes[k] * (1 + mpmath.mpf(10) ** -20), (name, point, d, slopes)


@pytest.mark.parametrize("name", sorted(n for n, op in OPS.items() if isinstance(op.ld, Elementwise)))
def test_extended_kernel_agrees_with_mpmath_and_its_slope_bounds(name):
    op = OPS[name]
    for point in POINTS[name]:
        t = np.array([[point]], dtype=np.longdouble)
        v = op.ld.fn(t)
        with mpmath.workdps(40):
            exact = op.mp.fn(mpmath.mpf(point))
            assert abs(mpmath.mpf(float(v[0, 0])) - exact) <= 2 ** -52 * abs(exact), (name, point)
            d = mpmath.diff(op.mp.fn, mpmath.mpf(point))
        assert abs(float(d)) <= float(np.asarray(op.ld.slope(t, v)).ravel()[0]) * (1 + 1e-12), (name, point)
