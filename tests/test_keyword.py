"""``-k`` expressions select cases by name like ``pytest -k``."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from diffcheck.runner.keyword import KeywordError, compile_keyword, matches


@pytest.mark.parametrize("expr, name, expected", [
    ("sigmoid", "sigmoid_wide", True),
    ("sigmoid", "tanh", False),
    ("SIGMOID", "Sigmoid", True),                      # case-insensitive both ways
    ("soft", "log_softmax", True),                     # substring, anywhere
    ("softmax and not log", "softmax", True),
    ("softmax and not log", "log_softmax", False),
    ("relu or gelu", "gelu_tanh", True),
    ("relu or gelu", "silu", False),
    ("not relu", "relu", False),
    ("not not relu", "relu", True),
    ("(relu or gelu) and not leaky", "leaky_relu", False),
    ("(relu or gelu) and not leaky", "relu6", True),
    ("a or b and c", "a", True),                       # and binds tighter than or
    ("(a or b) and c", "a", False),
    ("not a and b", "b", True),                        # not binds tighter than and
    ("not a and b", "ab", False),
    ("float32", "mse.float32", True),                  # dots and brackets are part of a term
    ("x[0]", "grad_x[0]", True),
    ("((relu))", "relu", True),
    ("", "anything", True),                            # an empty expression selects all
    ("   ", "anything", True),
])
def test_matches(expr, name, expected):
    assert matches(expr, name) is expected


@pytest.mark.parametrize("expr, says", [
    ("and", "unexpected 'and' at column 1"),
    ("relu and", "ends where a name"),
    ("not", "ends where a name"),
    ("(relu", "'(' at column 1 is never closed"),
    ("relu)", "unexpected ')' at column 5"),
    ("relu gelu", "unexpected 'gelu' at column 6; expected 'and' or 'or'"),
    ("()", "unexpected ')' at column 2"),
    ("relu or or gelu", "unexpected 'or' at column 9"),
])
def test_malformed_expression_is_a_value_error_that_says_where(expr, says):
    with pytest.raises(ValueError) as info:
        matches(expr, "relu")
    assert isinstance(info.value, KeywordError)
    assert says in str(info.value)
    assert repr(expr) in str(info.value)


def test_compiled_predicate_is_reusable():
    selected = compile_keyword("exp and not log")
    assert [n for n in ["exp", "expm1", "log_exp", "sin"] if selected(n)] == ["exp", "expm1"]


_words = st.text(alphabet="abcXYZ019_.-", min_size=1, max_size=6).filter(
    lambda w: w.lower() not in ("and", "or", "not"))


@given(term=_words, name=st.text(alphabet="abcXYZ019_.-", max_size=12))
def test_a_single_term_is_a_case_insensitive_substring(term, name):
    assert matches(term, name) is (term.lower() in name.lower())


@given(a=_words, b=_words, name=st.text(alphabet="abcXYZ019_.-", max_size=12))
def test_operators_follow_boolean_logic(a, b, name):
    has_a, has_b = matches(a, name), matches(b, name)
    assert matches(f"{a} and {b}", name) is (has_a and has_b)
    assert matches(f"{a} or {b}", name) is (has_a or has_b)
    assert matches(f"not ({a} or {b})", name) is (not has_a and not has_b)
