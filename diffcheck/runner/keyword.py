"""Select cases by name with ``-k EXPR``, the way ``pytest -k`` selects tests.

An expression is made of terms combined with ``and``, ``or``, ``not`` and parentheses.
A term matches a case when it is a case-insensitive substring of the case's name::

    -k sigmoid                     # every case whose name contains "sigmoid"
    -k "softmax and not log"       # softmax, but not log_softmax
    -k "(relu or gelu) and float"

``not`` binds tightest, then ``and``, then ``or``. An empty expression matches every case.
The expression is parsed by a small recursive-descent parser, never evaluated as Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

__all__ = ["KeywordError", "compile_keyword", "matches"]

Predicate = Callable[[str], bool]

# A term is any run of characters that is not whitespace or a parenthesis, so names such as
# ``log_softmax.float32`` or ``x[0]`` are single terms.
_TOKEN = re.compile(r"\s*(?:(?P<paren>[()])|(?P<word>[^\s()]+))")


class KeywordError(ValueError):
    """A ``-k`` expression is malformed: an operator with nothing to act on, an unbalanced
    parenthesis, or two terms with no ``and``/``or`` between them."""


@dataclass(frozen=True)
class _Token:
    text: str
    column: int  # 1-based, for messages


def _tokenize(expr: str) -> list[_Token]:
    tokens = []
    pos = 0
    while pos < len(expr):
        match = _TOKEN.match(expr, pos)
        if match is None:  # only trailing whitespace is left
            break
        kind = "paren" if match.group("paren") else "word"
        tokens.append(_Token(match.group(kind), match.start(kind) + 1))
        pos = match.end()
    return tokens


class _Parser:
    """Grammar::

        expr    := and_expr ("or" and_expr)*
        and_expr:= not_expr ("and" not_expr)*
        not_expr:= "not" not_expr | "(" expr ")" | TERM
    """

    def __init__(self, expr: str):
        self.expr = expr
        self.tokens = _tokenize(expr)
        self.index = 0

    def parse(self) -> Predicate:
        if not self.tokens:
            return lambda name: True
        predicate = self._or()
        if self.index < len(self.tokens):
            token = self.tokens[self.index]
            wanted = "'and' or 'or'" if token.text != ")" else "a matching '('"
            self._fail(f"unexpected {token.text!r} at column {token.column}; expected {wanted}")
        return predicate

    def _peek(self) -> str | None:
        return self.tokens[self.index].text if self.index < len(self.tokens) else None

    def _take(self) -> _Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def _or(self) -> Predicate:
        parts = [self._and()]
        while self._peek() == "or":
            self._take()
            parts.append(self._and())
        if len(parts) == 1:
            return parts[0]
        return lambda name: any(p(name) for p in parts)

    def _and(self) -> Predicate:
        parts = [self._not()]
        while self._peek() == "and":
            self._take()
            parts.append(self._not())
        if len(parts) == 1:
            return parts[0]
        return lambda name: all(p(name) for p in parts)

    def _not(self) -> Predicate:
        if self.index >= len(self.tokens):
            self._fail("the expression ends where a name, 'not' or '(' was expected")
        token = self._take()
        if token.text == "not":
            inner = self._not()
            return lambda name: not inner(name)
        if token.text == "(":
            inner = self._or()
            if self._peek() != ")":
                self._fail(f"the '(' at column {token.column} is never closed")
            self._take()
            return inner
        if token.text in (")", "and", "or"):
            self._fail(f"unexpected {token.text!r} at column {token.column}; "
                       "expected a name, 'not' or '('")
        term = token.text.lower()
        return lambda name: term in name.lower()

    def _fail(self, reason: str) -> None:
        raise KeywordError(f"invalid -k expression {self.expr!r}: {reason}")


def compile_keyword(expr: str) -> Predicate:
    """Parse ``expr`` once and return a predicate ``name -> bool``.

    Raises :class:`KeywordError` (a ``ValueError``) when the expression is malformed; the
    message quotes the expression and says where it went wrong.
    """
    return _Parser(expr).parse()


def matches(expr: str, name: str) -> bool:
    """Whether the case called ``name`` is selected by the ``-k`` expression ``expr``.

    >>> matches("softmax and not log", "log_softmax")
    False
    >>> matches("SIGMOID or tanh", "sigmoid_wide")
    True
    """
    return compile_keyword(expr)(name)
