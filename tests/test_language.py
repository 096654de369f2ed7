"""The case language: the allowlist parser, its refusals, and its two readings.

Every node type of the grammar parses; everything outside it is an ExpressionError that
points at the offending character and runs nothing; hostile input is refused quickly and
never escapes as a RecursionError. Two Hypothesis properties: random expressions of the
grammar mean the same number in SymPy and in torch, and random junk is an ExpressionError
and nothing else.
"""

from __future__ import annotations

import ast
import builtins
import math
import os
import time

import mpmath
import numpy as np
import pytest
import sympy as sp
import torch
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from diffcheck.errors import CaseFileError, ExpressionError
from diffcheck.language import (DTYPE_KEY, MAX_LENGTH, BinOp, Call, Compare, Index, Name, Neg, Num, _children,
                                names_used, parse, to_math, to_torch)
from diffcheck.language.library import LIBRARY, arr

X = sp.Symbol("x", real=True)
V = np.array([sp.Symbol(f"v_{i}", real=True) for i in range(3)], dtype=object)
M = np.array([[sp.Symbol(f"M_{i}_{j}", real=True) for j in range(3)] for i in range(2)], dtype=object)
ENV = {"x": arr(X), "v": V, "M": M}


def math_of(text: str):
    return to_math(parse(text), ENV)


def scalar(text: str) -> sp.Expr:
    out = math_of(text)
    assert out.shape == ()
    return out[()]


# --- every node of the grammar parses -----------------------------------------------------

def test_numbers_keep_their_exact_written_value():
    assert parse("2") == Num(0, 2, True)
    assert parse("0.5").value == sp.Rational(1, 2)
    assert parse("1e-3").value == sp.Rational(1, 1000)       # the decimal written, not the binary double
    assert parse("0.1").value != 0.1 and scalar("0.1") == sp.Rational(1, 10)
    assert not parse("2.0").is_int


def test_names_and_named_constants():
    assert parse("x") == Name(0, "x")
    assert scalar("pi") == sp.pi and scalar("E") == sp.E
    assert names_used(parse("sigmoid(x) + v[0] * pi")) == {"x", "v", "pi"}


@pytest.mark.parametrize("op", ["+", "-", "*", "/", "**", "@"])
def test_binary_operators(op):
    node = parse(f"v {op} v")
    assert isinstance(node, BinOp) and node.op == op and node.right.pos == len(f"v {op} ")


def test_unary_minus_and_plus():
    assert parse("-x") == Neg(0, Name(1, "x"))
    assert parse("+x") == Name(1, "x")
    assert scalar("-(-x)") == X


def test_operator_meanings():
    assert scalar("(x + 1) * 2 - x / 4") == 2 * (X + 1) - X / 4
    assert scalar("x ** 3") == X ** 3
    assert scalar("v @ v") == sum(s ** 2 for s in V)
    assert math_of("M @ v").shape == (2,)
    assert math_of("2 * v + 1").shape == (3,)


def test_comparison_inside_where():
    node = parse("where(x < 1, x, 2)")
    assert isinstance(node, Call) and isinstance(node.args[0], Compare)
    for op, rel in [("<", sp.Lt), ("<=", sp.Le), (">", sp.Gt), (">=", sp.Ge)]:
        expr = scalar(f"where(x {op} 1, x, 2)")
        assert expr == sp.Piecewise((X, rel(X, 1)), (2, True))


def test_calls_with_dim_keyword():
    node = parse("softmax(M, dim=0)")
    assert node == Call(0, "softmax", (Name(8, "M"),), 0, (("dim", 0),))
    assert parse("sum(M, dim=-1)").dim == -1
    assert math_of("softmax(M, dim=0)").shape == (2, 3)
    assert math_of("sum(M, dim=0)").shape == (3,)
    assert scalar("sum(M)") == sum(M.ravel())


def test_indexing_and_slicing():
    assert parse("v[0]") == Index(0, Name(0, "v"), (0,))
    assert parse("M[:, 1]").index == (slice(None, None, None), 1)
    assert parse("v[1:]").index == (slice(1, None, None),)
    assert parse("v[::-1]").index == (slice(None, None, -1),)
    assert scalar("v[-1]") == V[2]
    assert list(math_of("M[:, 1]")) == [M[0, 1], M[1, 1]]
    assert list(math_of("v[::-1]")) == list(V[::-1])


def test_children_cover_every_node_type():
    tree = parse("where(-x < 1, sum(v[0:2]) ** 2, 3)")
    kinds = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        kinds.add(type(node))
        stack.extend(_children(node))
    assert kinds == {Call, Compare, Neg, Name, Num, BinOp, Index}


def test_whitespace_newlines_and_comments():
    assert scalar("  x +\n 1  # a comment") == X + 1


# --- everything else is refused, at the right character -----------------------------------

REFUSED = [
    # (text, offset, words in the message)
    ("x.__class__", 1, "attributes"),
    ("sin(x) + x.real", 10, "attributes"),
    ("torch._C", 5, "attributes"),
    ("torch.sigmoid(x)", 0, "only functions of the library"),
    ("lambda: 1", 0, "lambda"),
    ("[a for a in v]", 0, "comprehension"),
    ("sum(a for a in v)", 3, "comprehension"),  # Python places a bare generator at its "("
    ("'text'", 0, "literal"),
    ("x + f'{x}'", 4, "string"),
    ("b'x'", 0, "literal"),
    ("True", 0, "literal"),
    ("None", 0, "literal"),
    ("1j", 0, "literal"),
    ("foo(x)", 0, "unknown function 'foo'"),
    ("sigmod(x)", 0, "did you mean 'sigmoid'"),
    ("__import__('os')", 0, "may not start with '_'"),
    ("x + __builtins__", 4, "may not start with '_'"),
    ("_x", 0, "may not start with '_'"),
    ("x < 1", 0, "only allowed as the condition of where"),
    ("x + (x == 1)", 5, "only allowed as the condition of where"),
    ("where(x < 1 < 2, x, x)", 6, "one comparison"),
    ("where(x is 1, x, x)", 6, "one comparison"),
    ("where(x, x, x)", 6, "needs a comparison"),
    ("sigmoid(x, foo=1)", 11, "no keyword 'foo'"),
    ("softmax(v, axis=0)", 11, "only dim= is allowed"),
    ("exp(**x)", 4, "'**' arguments"),
    ("exp(*v)", 4, "'*'"),
    ("sum(v, dim=x)", 11, "whole number"),
    ("sum(v, dim=10**7)", 11, "whole number"),
    ("v[x]", 2, "whole number"),
    ("v[0.5]", 2, "whole number"),
    ("x % 2", 0, "'%'"),
    ("x // 2", 0, "'//'"),
    ("~x", 0, "'~'"),
    ("not x", 0, "'not'"),
    ("x and x", 0, "'and'/'or'"),
    ("x if x else x", 0, "'if ... else'"),
    ("(x, x)", 0, "tuple"),
    ("[x]", 0, "list"),
    ("{1: x}", 0, "dict"),
    ("(y := 1)", 1, "':='"),
    ("x;1", 1, "invalid syntax"),
    ("", 0, "empty"),
    ("   ", 0, "empty"),
    ("x + é", 4, "not allowed"),
    ("1e999", 0, "out of range"),
    ("exp(x)(x)", 0, "only functions of the library"),
    ("leaky_relu(x, x)", 14, "must be a number"),
    ("exp(x, x)", 0, "takes 1 argument"),
    ("dot(v)", 0, "takes 2 argument"),
]


@pytest.mark.parametrize("text, offset, says", REFUSED, ids=[t for t, _, _ in REFUSED])
def test_refused_with_offset(text, offset, says):
    with pytest.raises(ExpressionError) as info:
        math_of(text)
    assert info.value.offset == offset, info.value.message
    assert says in f"{info.value.message} ({info.value.hint})"


@pytest.mark.parametrize("text", ["x +", "sin(x", "x)", "1 2", "x = 1", "import os", "x\\\n+ 1"])
def test_syntax_errors_are_expression_errors_inside_the_text(text):
    with pytest.raises(ExpressionError) as info:
        math_of(text)
    assert "invalid syntax" in info.value.message and 0 <= info.value.offset <= len(text)


SHAPE_ERRORS = [
    ("v + M[0, 0:2]", 0, "do not fit"),
    ("x @ v", 0, "do not fit"),
    ("dot(v, M)", 0, "dot() needs a 1-d argument"),
    ("softmax(x)", 0, "softmax() needs"),
    ("transpose(v)", 0, "transpose() needs a 2-d"),
    ("v[3]", 0, "out of range"),
    ("1 + M[0, 5]", 4, "out of range"),
    ("v[0, 0]", 0, "too many indices"),
    ("sum(v, dim=1)", 0, "out of bounds"),
    ("x + v[::0]", 8, "slice step cannot be 0"),
    ("cross_entropy(v, 3)", 0, "out of range"),
    ("y + 1", 0, "unknown name 'y'"),
]


@pytest.mark.parametrize("text, offset, says", SHAPE_ERRORS, ids=[t for t, _, _ in SHAPE_ERRORS])
def test_meaning_errors_are_expression_errors(text, offset, says):
    with pytest.raises(ExpressionError) as info:
        math_of(text)
    assert info.value.offset == offset and says in info.value.message


def test_offsets_count_leading_whitespace():
    with pytest.raises(ExpressionError) as info:
        parse("   x + y.z")
    assert info.value.offset == 8


def test_expression_error_is_a_case_file_error():
    assert issubclass(ExpressionError, CaseFileError)


@pytest.mark.parametrize("value", [None, b"x", 3, ["x"]])
def test_non_text_is_an_expression_error(value):
    with pytest.raises(ExpressionError, match="must be text"):
        parse(value)


HOSTILE = [
    "__import__('os').system('touch PWNED')",
    "open('PWNED', 'w').write('x')",
    "exec(\"open('PWNED', 'w')\")",
    "eval(\"__import__('os').system('touch PWNED')\")",
    "x.__class__.__base__.__subclasses__()",
    "(lambda: __import__('os').system('touch PWNED'))()",
    "[c for c in ().__class__.__base__.__subclasses__()]",
    "getattr(x, '__class__')",
    "sigmoid(x, key=__import__('os'))",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_nothing_of_a_refused_expression_runs(text, monkeypatch, tmp_path):
    """Parsing is ast.parse only (compile with PyCF_ONLY_AST): no eval, exec, import or open."""
    monkeypatch.chdir(tmp_path)
    called = []

    def sentinel(name, real):
        def record(*args, **kwargs):
            called.append((name, args))
            return real(*args, **kwargs)
        return record

    real_compile = builtins.compile

    def only_ast(source, filename, mode, flags=0, *args, **kwargs):
        if not flags & ast.PyCF_ONLY_AST:
            called.append(("compile", source))
        return real_compile(source, filename, mode, flags, *args, **kwargs)

    monkeypatch.setattr(builtins, "compile", only_ast)
    for name in ("eval", "exec", "open", "__import__"):
        monkeypatch.setattr(builtins, name, sentinel(name, getattr(builtins, name)))
    monkeypatch.setattr(os, "system", sentinel("os.system", lambda *a: 0))
    with pytest.raises(ExpressionError):
        math_of(text)
    monkeypatch.undo()
    assert not [c for c in called if c[0] != "__import__" or c[1][0] in ("os", "subprocess", "shutil")]
    assert not (tmp_path / "PWNED").exists()


def test_reading_a_valid_expression_evaluates_nothing(monkeypatch):
    """Not even for the SymPy meaning: no sympify/parse_expr of the text (they call eval)."""
    calls = []
    monkeypatch.setattr(builtins, "eval", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(sp, "sympify", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(sp, "parse_expr", lambda *a, **k: calls.append(a))
    out = math_of("sigmoid(x) * sum(softmax(v)) + where(x < 1, 0.5, E)")
    monkeypatch.undo()
    assert calls == [] and out.shape == ()


# --- hostile input ------------------------------------------------------------------------

def refused_quickly(text: str, seconds: float = 1.0) -> ExpressionError:
    start = time.perf_counter()
    with pytest.raises(ExpressionError) as info:
        math_of(text)
    assert time.perf_counter() - start < seconds, f"took {time.perf_counter() - start:.2f} s"
    return info.value


@pytest.mark.parametrize("text, offset", [
    ("10**10**10", 0),
    ("x + 10**10**10", 4),
    ("9**9**9", 0),
    ("2**-10**6", 0),
    ("(10**300)**(10**300)", 0),
    ("10**(10**400)", 0),
    ("(1000000001/1000000000)**(10**10)", 0),   # a value near 1, but an exact rational of 9e10 digits
    ("sqrt(2)**(10**10)", 0),                   # SymPy turns it into 2**5000000000
    ("(2**0.5)**(10**10)", 0),
    ("pi**(10**10)", 0),
    ("sqrt(2)**sqrt(2)**sqrt(2)**100", 9),
    ("exp(log(2) * 10**10)", 0),                # SymPy turns it into 2**10000000000
    ("x + exp(x + 10**10 * log(2))", 4),
    ("sigmoid(-log(3) * 10**9)", 0),
    ("softmax(v + log(2) * 10**10)", 0),
])
def test_astronomical_constants_are_refused_quickly(text, offset):
    err = refused_quickly(text)
    assert "too large" in err.message and err.offset == offset
    assert len(err.message) < 200  # the huge number itself is not printed


def test_large_but_harmless_powers_are_read():
    assert scalar("x**10**10") == X ** 10 ** 10
    assert scalar("2**0.5") == sp.sqrt(2)
    assert scalar("10**-300") == sp.Rational(1, 10 ** 300)
    assert scalar("exp(1000)") == sp.exp(1000)


def test_very_long_input_is_refused_before_parsing(monkeypatch):
    monkeypatch.setattr(ast, "parse", lambda *a, **k: pytest.fail("parsed"))
    err = refused_quickly("x+" * MAX_LENGTH + "x")
    assert "characters long" in err.message


@pytest.mark.parametrize("text", [
    "(" * 1000 + "x" + ")" * 1000,
    "exp(" * 1000 + "x" + ")" * 1000,
    "-" * 10000 + "x",
    "x" + "+x" * 5000,
    "x" + "**x" * 5000,
    "x" + "[0]" * 5000,
    "x" + ".a" * 5000,
    "x" + " < x" * 5000,
    "[" * 1000 + "]" * 1000,
])
def test_deep_nesting_is_an_expression_error_not_a_recursion_error(text):
    refused_quickly(text, seconds=2.0)


def test_deep_nesting_under_a_low_recursion_limit():
    """With only a few hundred frames of stack left, the refusal is still an ExpressionError:
    the tree walk is bounded by MAX_DEPTH, not by how deep the text nests."""
    import sys
    depth, frame = 0, sys._getframe()
    while frame is not None:
        depth, frame = depth + 1, frame.f_back
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(depth + 300)
    try:
        for text in ["-" * 3000 + "x", "x" + "+x" * 3000]:
            with pytest.raises(ExpressionError):
                math_of(text)
    finally:
        sys.setrecursionlimit(old)


# --- the torch reading --------------------------------------------------------------------

def torch_env(dtype=torch.float64, **values):
    return {DTYPE_KEY: dtype, **{k: torch.as_tensor(v, dtype=dtype) for k, v in values.items()}}


def test_torch_reading_calls_the_library_kernels():
    fn = to_torch(parse("sigmoid(x) * sum(softmax(v)) + where(x < 1, 0.5, E)"))
    x = torch.tensor(0.3, dtype=torch.float64)
    got = fn(torch_env(x=x, v=[1.0, 2.0, 3.0]))
    assert torch.isclose(got, torch.sigmoid(x) + 0.5)


def test_numbers_never_promote_the_dtype_under_test():
    for text in ["x + 1", "x * 0.1", "sigmoid(2) * x", "maximum(x, 0.5)", "where(x < 1, 2, x)", "x ** 2"]:
        got = to_torch(parse(text))(torch_env(torch.float16, x=0.5))
        assert got.dtype == torch.float16, text


def test_torch_reading_of_constant_subexpressions():
    assert to_torch(parse("2 ** 0.5"))(torch_env()) == math.sqrt(2)
    assert to_torch(parse("pi * 2"))(torch_env()) == 2 * math.pi
    assert to_torch(parse("3"))(torch_env()) == 3


# --- property: the two meanings agree ------------------------------------------------------

NUMBERS = st.sampled_from(["1", "2", "3", "0.5", "1.5", "0.25", "pi", "E"])
SAFE_UNARY = ["exp", "sin", "cos", "tanh", "sinh", "cosh", "asinh", "atan", "erf", "abs",
              "sigmoid", "relu", "softplus", "gelu", "silu", "elu"]


def _wrap(fmt):
    return lambda a: fmt.format(a=a)


def scalars(vectors_too: bool = True):
    """Scalar expressions of x (and of v, reduced); every function inside its safe domain."""
    leaves = st.one_of(st.just("x"), NUMBERS)

    def extend(inner):
        unary = st.one_of(
            st.tuples(st.sampled_from(SAFE_UNARY), inner).map(lambda t: f"{t[0]}({t[1]})"),
            inner.map(_wrap("log(1 + ({a})**2)")),
            inner.map(_wrap("sqrt(1 + ({a})**2)")),
            inner.map(_wrap("tan(sin({a}))")),
            inner.map(_wrap("leaky_relu({a}, 0.1)")),
            inner.map(_wrap("-({a})")),
            st.tuples(inner, st.integers(0, 3)).map(lambda t: f"({t[0]})**{t[1]}"),
        )
        binary = st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]}) / (1 + ({t[1]})**2)"),
            st.tuples(inner, inner).map(lambda t: f"({t[0]}) / (2 + cos({t[1]}))"),
            st.tuples(inner, inner).map(lambda t: f"maximum({t[0]}, {t[1]})"),
            st.tuples(inner, inner).map(lambda t: f"minimum({t[0]}, {t[1]})"),
            st.tuples(st.sampled_from(["<", "<=", ">", ">="]), NUMBERS, inner, inner)
              .map(lambda t: f"where(x {t[0]} {t[1]}, {t[2]}, {t[3]})"),
        )
        return st.one_of(unary, binary)

    base = st.recursive(leaves, extend, max_leaves=6)
    if not vectors_too:
        return base
    return st.one_of(base, st.tuples(base, vectors(base)).map(lambda t: f"({t[0]}) * ({t[1]})"),
                     vectors(base))


def vectors(scalar_exprs):
    """Scalar reductions of vector expressions of v (shape [3])."""
    vec_leaf = st.one_of(st.just("v"), st.just("v[::-1]"), st.just("2 * v"))

    def vec_extend(inner):
        return st.one_of(
            st.tuples(st.sampled_from(SAFE_UNARY), inner).map(lambda t: f"{t[0]}({t[1]})"),
            st.tuples(inner, st.sampled_from(["+", "-", "*"]), inner).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
            st.tuples(inner, scalar_exprs).map(lambda t: f"({t[0]}) * ({t[1]})"),
            inner.map(_wrap("softmax({a})")),
            inner.map(_wrap("log_softmax({a})")),
            st.tuples(inner, inner).map(lambda t: f"diag(outer({t[0]}, {t[1]}))"),
            st.tuples(inner, inner).map(lambda t: f"transpose(outer({t[0]}, {t[1]})) @ v"),
        )

    vec = st.recursive(vec_leaf, vec_extend, max_leaves=4)
    return st.one_of(
        st.tuples(st.sampled_from(["sum", "mean", "logsumexp"]), vec).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(vec, vec).map(lambda t: f"dot({t[0]}, {t[1]})"),
        st.tuples(vec, vec).map(lambda t: f"({t[0]}) @ ({t[1]})"),
        st.tuples(vec, vec).map(lambda t: f"mse({t[0]}, {t[1]})"),
        st.tuples(vec, vec).map(lambda t: f"sse({t[0]}, {t[1]})"),
        st.tuples(vec, vec).map(lambda t: f"cross_entropy({t[0]}, softmax({t[1]}))"),
        vec.map(lambda t: f"({t})[1]"),
    )


FLOATS = st.floats(-4, 4, allow_nan=False, allow_infinity=False)


def _exact_at(expr: sp.Expr, values: dict) -> complex:
    subs = {s: sp.Float(v, 40) for s, v in values.items()}
    return complex(expr.xreplace(subs).evalf(30))


def _largest_intermediate(tree, env) -> float:
    """The largest |value| of any subexpression in torch: rounding errors scale with it."""
    out = 0.0
    stack = [tree]
    while stack:
        node = stack.pop()
        value = to_torch(node)(env)
        value = value if isinstance(value, torch.Tensor) else torch.tensor(float(value), dtype=torch.float64)
        if value.dtype != torch.bool:
            out = max(out, float(value.abs().max()))
        stack.extend(_children(node))
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=scalars(), x=FLOATS, v=st.lists(FLOATS, min_size=3, max_size=3))
def test_sympy_and_torch_meanings_agree(text, x, v):
    tree = parse(text)
    expr = to_math(tree, ENV)[()]
    env = torch_env(x=x, v=v)
    got = to_torch(tree)(env)
    got = float(got) if not isinstance(got, torch.Tensor) else float(got.item())
    exact = _exact_at(expr, {X: x, **dict(zip(V, v))})
    assume(abs(exact.imag) <= 1e-20 * max(1.0, abs(exact.real)))
    scale = _largest_intermediate(tree, env)
    assume(math.isfinite(got) and math.isfinite(exact.real) and scale < 1e12)
    # float64 rounding errors are a few eps of the largest intermediate value; 1e-9 is ~4.5e6 eps
    assert abs(got - exact.real) <= 1e-9 * max(1.0, abs(exact.real), scale), (text, got, exact.real)


# --- property: junk is an ExpressionError and nothing else --------------------------------

TOKENS = (["x", "v", "M", "(", ")", "[", "]", ",", ":", "+", "-", "*", "/", "**", "@", "<", "<=", ">",
           ">=", "==", "=", "dim", "0", "1", "2", "-1", "0.5", "1e3", "1e999", "10", "9", "pi", "E", " ", ".",
           "_", "__import__", "__class__", "'a'", "lambda", "for", "in", "if", "else", "not", "and", "%",
           "~", "\n", "\\", "#", "\t", "\x00", "é", "torch", "F", "os", "y", "*", "**{}", "j"]
          + list(LIBRARY))
JUNK = st.one_of(st.text(max_size=60), st.lists(st.sampled_from(TOKENS), max_size=30).map("".join))


@settings(max_examples=200, deadline=None)
@given(JUNK)
def test_junk_is_an_expression_error_and_nothing_else(text):
    try:
        math_of(text)
    except ExpressionError as err:
        assert isinstance(err, CaseFileError)
        assert 0 <= err.offset <= max(len(text), 1)


def test_meanings_agree_on_kinked_and_reduced_examples():
    """A few fixed examples of the property, with a precise independent reference (mpmath)."""
    x, v = 0.75, [0.5, -1.25, 2.0]
    env = torch_env(x=x, v=v)
    with mpmath.workdps(40):
        p = [mpmath.exp(t) / sum(mpmath.exp(u) for u in v) for t in v]
        cases = {
            "logsumexp(v * x)": mpmath.log(sum(mpmath.exp(t * x) for t in v)),
            "dot(softmax(v), v)": sum(pi * t for pi, t in zip(p, v)),
            "relu(-x) + abs(v[1]) + elu(v[1])": 1.25 + mpmath.exp(-1.25) - 1,
            "cross_entropy(v, softmax(2 * v))": -sum(q * mpmath.log(pi) for q, pi in zip(
                [mpmath.exp(2 * t) / sum(mpmath.exp(2 * u) for u in v) for t in v], p)),
        }
        for text, want in cases.items():
            tree = parse(text)
            got = float(to_torch(tree)(env))
            exact = _exact_at(to_math(tree, ENV)[()], {X: x, **dict(zip(V, v))}).real
            assert exact == pytest.approx(float(want), rel=1e-14), text
            assert got == pytest.approx(float(want), rel=1e-13), text
