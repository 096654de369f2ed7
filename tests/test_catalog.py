"""docs/library.md is generated from the function table and is never stale; every row's
options are spelled as torch spells them; every SymPy function the elementwise rows (and their
derivatives) produce is a row of the op table, so the reference never falls back on lambdify."""

from __future__ import annotations

import inspect

import pytest
import sympy as sp

from diffcheck.errors import ExpressionError
from diffcheck.language import parse
from diffcheck.language import catalog
from diffcheck.language.library import LIBRARY, arr
from diffcheck.language.pointwise import ROWS
from diffcheck.symbolic.dag import from_sympy


def test_docs_library_md_is_generated_from_the_table():
    import torch
    recorded = catalog.measured_with(catalog.DOC.read_text(encoding="utf-8"))
    if recorded != torch.__version__.split("+")[0]:
        pytest.skip(f"docs/library.md was measured with torch {recorded}, this is {torch.__version__}")
    assert catalog.main(["--check"]) == 0, "docs/library.md is stale: run python -m diffcheck.language.catalog"


def test_every_option_is_a_keyword_of_the_torch_callable_it_names():
    import torch  # noqa: F401  (the names below are torch's)
    for f in ROWS:
        for path in f.torch_names:
            obj = eval(path, {"torch": __import__("torch")})  # noqa: S307 — our own table's names
            try:
                params = inspect.signature(obj).parameters
            except (TypeError, ValueError):  # a builtin without a signature: its docstring names them
                params = None
            for o in f.opts:
                if params is not None and not any(p.kind == p.VAR_KEYWORD for p in params.values()):
                    assert o.name in params or o.name == "dim", (f.name, path, o.name)
                else:
                    assert o.name in (obj.__doc__ or ""), (f.name, path, o.name)


@pytest.mark.parametrize("f", [f for f in ROWS if f.family in ("elementary", "special", "activation", "binary")
                               and not f.dim], ids=lambda f: f.name)
def test_elementwise_rows_and_their_derivatives_are_read_by_the_op_table(f):
    x, y = sp.Symbol("x", real=True), sp.Symbol("y", real=True)
    options = {"threshold": {"threshold": sp.S.Half, "value": 2}, "multigammaln": {"p": 2},
               "clamp": {"min": -1, "max": 1}}.get(f.name, {})
    if f.number_args == (0,):
        expr = f.math(arr(sp.Rational(3, 4) if f.name.startswith("gammainc") else sp.Integer(1)), arr(x))[()]
    elif f.nargs[0] == 2:
        expr = f.math(arr(x), arr(y))[()]
    else:
        expr = f.math(arr(x), **options)[()]
    exprs = [expr, sp.diff(expr, x)]
    ops = set(from_sympy(exprs, [x, y]).ops)
    assert "foreign" not in ops, (f.name, exprs)


@pytest.mark.parametrize("text, message", [
    ("softplus(x, bata=2)", "did you mean 'beta'"),
    ("gelu(x, approximate='tahn')", "did you mean 'tanh'"),
    ("leaky_relu(x, 0.1, 0.2)", "takes 1 argument"),
    ("clamp(x, min='a')", "must be a number"),
    ("hardtanh(x, min_val=-1, min_val=2)", "twice"),
])
def test_bad_options_are_refused_with_the_signature(text, message):
    with pytest.raises(ExpressionError) as err:
        parse(text)
    assert message in str(err.value) + str(err.value.hint or "")


def test_options_reach_both_meanings_exactly():
    from diffcheck.language import to_math
    x = sp.Symbol("x", real=True)
    expr = to_math(parse("softshrink(x, lambd=0.1)"), {"x": arr(x)})[()]
    assert expr.subs(x, 1) == sp.Rational(9, 10)  # 0.1 is 1/10 exactly, never float(0.1)
    assert "threshold" in LIBRARY["softplus"].signature()
