"""The case language: an allowlist parser and the two readings of its tree.

Text is parsed with :func:`ast.parse` (parsing only; nothing is evaluated) and every node is
checked against an allowlist while it is converted into diffcheck's own small tree
(:class:`Node`). Anything outside the language is an :class:`ExpressionError` with the
character offset, so the loader's position of the expression gives file, line and column.

The tree is then read twice: :func:`to_math` gives numpy object arrays of SymPy expressions
(the mathematical definition), :func:`to_torch` gives a callable on tensors that calls
torch's own kernels.
"""

from __future__ import annotations

import ast
import warnings
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Mapping

import numpy as np
import sympy as sp
import torch

from ..errors import ExpressionError
from .library import CONSTANTS, LIBRARY, MAX_EXACT_DIGITS, Arr, Opt, arr

MAX_LENGTH = 20_000      # characters in one expression
MAX_NODES = 5_000        # parts of one expression (a 1,000-term sum has about 2,000)
MAX_DEPTH = 100          # nesting of calls, parentheses, unary minus and powers; a chain
                         # a + b + c + ... counts once, however long (it is read without recursion)
MAX_POWER_DIGITS = MAX_EXACT_DIGITS  # digits a constant power may produce


@dataclass(frozen=True)
class Node:
    """A node of the case-language tree; ``pos`` is its character offset in the text."""

    pos: int


@dataclass(frozen=True)
class Num(Node):
    value: Fraction
    is_int: bool


@dataclass(frozen=True)
class Name(Node):
    id: str


@dataclass(frozen=True)
class Neg(Node):
    operand: Node


@dataclass(frozen=True)
class BinOp(Node):
    op: str  # one of + - * / ** @
    left: Node
    right: Node


@dataclass(frozen=True)
class Compare(Node):
    op: str  # one of == != < <= > >=
    left: Node
    right: Node


@dataclass(frozen=True)
class Call(Node):
    func: str
    args: tuple[Node, ...]
    dim: int | None = None
    #: the options given (keyword, or positional after the tensor arguments), in the order
    #: given: (name, value), the value an int, a Fraction, a bool, a str, None, a tuple of
    #: ints, or a Node for an option that is itself an expression (weight=w)
    options: tuple[tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Index(Node):
    base: Node
    index: tuple  # of int | slice(int|None, int|None, int|None)


BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.MatMult: "@"}
CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
CMPOPS = CMPOPS
OP_TEXT = {ast.Mod: "%", ast.FloorDiv: "//", ast.BitAnd: "&", ast.BitOr: "|", ast.BitXor: "^",
            ast.LShift: "<<", ast.RShift: ">>", ast.Invert: "~", ast.Not: "not"}


def parse_python(text: str, what: str = "expression") -> ast.expr:
    """Parse ``text`` as one Python expression, turning every failure into ExpressionError."""
    if not isinstance(text, str):
        raise ExpressionError(f"the {what} must be text")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the {what} is {len(text)} characters long; the limit is {MAX_LENGTH}")
    if not text.strip():
        raise ExpressionError(f"the {what} is empty")
    if not text.isascii():
        bad = next(i for i, c in enumerate(text) if not c.isascii())
        raise ExpressionError(f"character {text[bad]!r} is not allowed in an {what}", bad)
    try:
        with warnings.catch_warnings():
            # "invalid decimal literal" and the like: the text is refused or read anyway,
            # a warning printed to the user's terminal from inside ast says nothing useful
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip().replace("\n", " "), mode="eval")
    except SyntaxError as err:
        offset = max((err.offset or 1) - 1, 0) + (len(text) - len(text.lstrip()))
        raise ExpressionError(f"invalid syntax in {what}: {err.msg}", offset) from None
    except (RecursionError, MemoryError):
        raise ExpressionError(f"the {what} is too deeply nested or too long to read (at most {MAX_DEPTH} "
                              f"levels and {MAX_NODES} parts)", 0, "split it into `let` steps") from None
    except ValueError as err:
        raise ExpressionError(f"the {what} cannot be read: {err}") from None
    return tree.body


def parse(text: str) -> Node:
    """Parse case-language ``text`` into a :class:`Node` tree."""
    lead = len(text) - len(text.lstrip()) if isinstance(text, str) else 0
    return _Converter(lead).convert(parse_python(text), 0)


class _Converter:
    def __init__(self, lead: int):
        self.lead = lead
        self.nodes = 0

    def pos(self, node: ast.AST) -> int:
        return self.lead + getattr(node, "col_offset", 0)

    def convert(self, node: ast.AST, depth: int, in_where: bool = False) -> Node:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"the expression has more than {MAX_NODES} parts", self.pos(node),
                                  "split it into `let` steps")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the expression is nested more than {MAX_DEPTH} levels deep", self.pos(node),
                                  "split it into `let` steps")
        pos = self.pos(node)
        if isinstance(node, ast.Constant):
            return self.number(node, pos)
        if isinstance(node, ast.Name):
            if node.id.startswith("_"):
                raise ExpressionError(f"name {node.id!r} is not allowed (names may not start with '_')", pos)
            return Name(pos, node.id)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.convert(node.operand, depth + 1, in_where)
            return Neg(pos, inner) if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp) and type(node.op) in BINOPS:
            # the left spine of a chain a + b + c + ... without recursion (its length is bounded
            # by MAX_NODES, not by the nesting limit)
            spine: list[ast.BinOp] = []
            cur: ast.AST = node
            while isinstance(cur, ast.BinOp) and type(cur.op) in BINOPS:
                spine.append(cur)
                cur = cur.left
                self.nodes += 1
            out = self.convert(cur, depth + 1, in_where)
            for b in reversed(spine):
                out = BinOp(self.pos(b), BINOPS[type(b.op)], out, self.convert(b.right, depth + 1, in_where))
            return out
        if isinstance(node, (ast.BinOp, ast.UnaryOp)):
            op = OP_TEXT.get(type(node.op), type(node.op).__name__)
            raise ExpressionError(f"the operator {op!r} is not part of the case language", pos)
        if isinstance(node, ast.Compare):
            if not in_where:
                raise ExpressionError("comparisons are only allowed as the condition of where(cond, a, b)", pos)
            if len(node.ops) != 1 or type(node.ops[0]) not in CMPOPS:
                raise ExpressionError("a condition is one comparison with == != < <= > or >=", pos)
            return Compare(pos, CMPOPS[type(node.ops[0])], self.convert(node.left, depth + 1),
                           self.convert(node.comparators[0], depth + 1))
        if isinstance(node, ast.Call):
            return self.call(node, depth, pos)
        if isinstance(node, ast.Subscript):
            return Index(pos, self.convert(node.value, depth + 1, in_where), self.index(node.slice))
        if isinstance(node, ast.Attribute):
            raise ExpressionError(f"attributes ('.{node.attr}') are not part of the case language; "
                                  "use the `torch:` key for torch code", self.pos(node) + len(ast.unparse(node.value)))
        raise ExpressionError(f"{describe(node)} is not part of the case language", pos)

    def number(self, node: ast.Constant, pos: int) -> Num:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ExpressionError(f"{describe(node)} is not part of the case language", pos)
        if isinstance(value, float) and not np.isfinite(value):
            raise ExpressionError("number out of range", pos)
        if isinstance(value, int) and abs(value) > 10 ** 300:
            raise ExpressionError("number out of range", pos)
        # exact decimal value as written (repr of a float gives the shortest round-trip text)
        return Num(pos, Fraction(repr(value)) if isinstance(value, float) else Fraction(value),
                   isinstance(value, int))

    def call(self, node: ast.Call, depth: int, pos: int) -> Call:
        if not isinstance(node.func, ast.Name):
            raise ExpressionError("only functions of the library can be called "
                                  "(attributes belong in the `torch:` key)", pos)
        name = node.func.id
        if name.startswith("_"):
            raise ExpressionError(f"name {name!r} is not allowed (names may not start with '_')", pos)
        func = LIBRARY.get(name)
        if func is None:
            raise ExpressionError(f"unknown function {name!r}", pos, suggest(name, LIBRARY))
        for kw in node.keywords:
            if kw.arg is None:
                raise ExpressionError("'**' arguments are not part of the case language", self.pos(kw))
        opts = {o.name: o for o in func.opts}
        lo, hi = func.nargs
        positional_opts = [o for o in func.opts if o.positional]
        if not lo <= len(node.args) <= hi + len(positional_opts):
            want = str(lo) if lo == hi else f"{lo} to {hi}"
            more = f" (then {', '.join(o.name for o in positional_opts)})" if positional_opts else ""
            raise ExpressionError(f"{name}() takes {want} argument(s){more}, got {len(node.args)}", pos,
                                  f"the signature is {func.signature()}" if func.opts else None)
        given: dict[str, Any] = {}
        if name in ("max", "min") and len(node.args) == 2 and not _is_whole(node.args[1]):
            raise ExpressionError(f"{name}(x, dim) takes a whole number as dim", self.pos(node.args[1]),
                                  f"for the elementwise {name}imum of two values use {name}imum(x, y)")
        for o, a in zip(positional_opts, node.args[hi:]):
            given[o.name] = self.option(name, o, a, depth)
        for kw in node.keywords:
            kpos = self.pos(kw)
            o = opts.get(kw.arg)
            if o is None:
                if list(opts) == ["dim"]:
                    more = "; only dim= is allowed"
                elif opts:
                    more = "; its keywords are " + ", ".join(f"{k}=" for k in opts)
                else:
                    more = ""
                raise ExpressionError(f"{name}() takes no keyword {kw.arg!r}{more}", kpos,
                                      suggest(kw.arg, opts) or f"the signature is {func.signature()}")
            if o.name in given:
                raise ExpressionError(f"{name}() got {o.name} twice", kpos)
            given[o.name] = self.option(name, o, kw.value, depth)
        args = tuple(self.convert(a, depth + 1, in_where=(name == "where" and i == 0))
                     for i, a in enumerate(node.args[:hi]))
        if name == "where" and not isinstance(args[0], Compare):
            raise ExpressionError("where() needs a comparison as its first argument", args[0].pos)
        for i in func.number_args:
            if i < len(args) and not _is_number(args[i]):
                raise ExpressionError(f"argument {i + 1} of {name}() must be a number", args[i].pos)
        dim = given.get("dim") if isinstance(given.get("dim"), int) else None
        return Call(pos, name, args, dim, tuple(given.items()))

    def option(self, func: str, o: Opt, node: ast.AST, depth: int) -> Any:
        """The value of option ``o`` of ``func``, read from its text by the option's kind."""
        pos = self.pos(node)
        what = f"{func}() option {o.name}="
        if isinstance(node, ast.Constant) and node.value is None:
            if o.default is None or o.nullable:
                return None
            raise ExpressionError(f"{what} cannot be None", pos)
        if o.kind == "tensor":
            return self.convert(node, depth + 1)
        if o.kind == "bool":
            if isinstance(node, ast.Constant) and isinstance(node.value, bool):
                return node.value
            raise ExpressionError(f"{what} must be True or False", pos)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if o.choices and node.value in o.choices:
                return node.value
            if o.choices:
                raise ExpressionError(f"{what} must be one of " + ", ".join(repr(c) for c in o.choices)
                                      + f", not {node.value!r}", pos, suggest(node.value, o.choices))
            raise ExpressionError(f"{what} must be {o.describe()}, not a string", pos)
        if o.kind == "choice":
            raise ExpressionError(f"{what} must be one of " + ", ".join(repr(c) for c in o.choices), pos)
        if o.kind == "int":
            return self.integer(node, o.name)
        if o.kind == "ints":
            if isinstance(node, (ast.Tuple, ast.List)):
                if not node.elts or len(node.elts) > 8:
                    raise ExpressionError(f"{what} takes 1 to 8 whole numbers", pos)
                return tuple(self.integer(e, o.name) for e in node.elts)
            return self.integer(node, o.name)
        # a number (or infinity, where the option allows it)
        sign, inner = 1, node
        if isinstance(inner, ast.UnaryOp) and isinstance(inner.op, (ast.USub, ast.UAdd)):
            sign, inner = (-1 if isinstance(inner.op, ast.USub) else 1), inner.operand
        if isinstance(inner, ast.Name) and inner.id == "inf" and o.inf:
            return float("inf") * sign
        if isinstance(inner, ast.Constant) and isinstance(inner.value, (int, float)) \
                and not isinstance(inner.value, bool):
            num = self.number(inner, pos)
            value = num.value * sign
            if o.kind == "number" and o.low is not None and value < o.low:
                raise ExpressionError(f"{what} must be at least {o.low}", pos)
            return int(value) if num.is_int else value
        raise ExpressionError(f"{what} must be {o.describe()}", pos)

    def integer(self, node: ast.AST, what: str) -> int:
        sign = 1
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            sign, node = -1, node.operand
        if isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool):
            if abs(node.value) > 10 ** 6:
                raise ExpressionError(f"{what} out of range", self.pos(node))
            return sign * node.value
        raise ExpressionError(f"{what} must be a whole number", self.pos(node))

    def index(self, node: ast.AST) -> tuple:
        parts = node.elts if isinstance(node, ast.Tuple) else [node]
        out = []
        for part in parts:
            if isinstance(part, ast.Slice):
                out.append(slice(*(None if p is None else self.integer(p, "a slice bound")
                                   for p in (part.lower, part.upper, part.step))))
                if out[-1].step == 0:
                    raise ExpressionError("a slice step cannot be 0", self.pos(part.step))
            else:
                out.append(self.integer(part, "an index"))
        return tuple(out)


def _is_whole(node: ast.AST) -> bool:
    """Is ``node`` a whole-number literal (with an optional minus)?"""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and isinstance(node.value, int) and not isinstance(node.value, bool)


def _is_number(node: Node) -> bool:
    return isinstance(node, Num) or (isinstance(node, Neg) and isinstance(node.operand, Num))


def describe(node: ast.AST) -> str:
    if isinstance(node, ast.Constant):
        return f"the literal {node.value!r}"
    names = {ast.Lambda: "a lambda", ast.ListComp: "a comprehension", ast.GeneratorExp: "a comprehension",
             ast.DictComp: "a comprehension", ast.SetComp: "a comprehension", ast.List: "a list",
             ast.Dict: "a dict", ast.Tuple: "a tuple", ast.BoolOp: "'and'/'or'", ast.IfExp: "'if ... else'",
             ast.NamedExpr: "':='", ast.Starred: "'*'", ast.JoinedStr: "a string", ast.Await: "'await'"}
    return names.get(type(node), f"'{type(node).__name__}'")


def suggest(name: str, choices) -> str | None:
    import difflib
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f"did you mean {close[0]!r}?" if close else None


def names_used(node: Node) -> set[str]:
    """Every name the tree refers to."""
    out: set[str] = set()
    stack = [node]
    while stack:
        cur = stack.pop()
        if isinstance(cur, Name):
            out.add(cur.id)
        stack.extend(_children(cur))
    return out


def _spine(node: "BinOp") -> tuple[Node, list["BinOp"]]:
    """The leftmost operand of a chain a + b - c ... and its operations in order."""
    ops = []
    cur: Node = node
    while isinstance(cur, BinOp):
        ops.append(cur)
        cur = cur.left
    return cur, ops[::-1]


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, Neg):
        return (node.operand,)
    if isinstance(node, (BinOp, Compare)):
        return (node.left, node.right)
    if isinstance(node, Call):
        return node.args + tuple(v for _, v in node.options if isinstance(v, Node))
    if isinstance(node, Index):
        return (node.base,)
    return ()


# --- the math reading ---------------------------------------------------------------------

def to_math(node: Node, env: Mapping[str, Arr]) -> Arr:
    """The SymPy meaning of ``node``: an object array of SymPy expressions."""
    try:
        return _math(node, env)
    except ExpressionError:
        raise
    except (ValueError, IndexError, TypeError) as err:
        raise ExpressionError(_shape_message(err), node.pos) from None


def _shape_message(err: Exception) -> str:
    text = str(err)
    if "broadcast" in text or "shape" in text or "matmul" in text or "dimension" in text:
        return f"shapes do not fit: {text}"
    return text


def _math(node: Node, env: Mapping[str, Arr]) -> Arr:
    if isinstance(node, Num):
        return arr(sp.Rational(node.value.numerator, node.value.denominator))
    if isinstance(node, Name):
        if node.id in env:
            return env[node.id]
        if node.id in CONSTANTS:
            return arr(CONSTANTS[node.id][0])
        raise ExpressionError(f"unknown name {node.id!r}", node.pos,
                              suggest(node.id, list(env) + list(CONSTANTS)))
    if isinstance(node, Neg):
        return arr(-_math(node.operand, env))
    if isinstance(node, BinOp):
        first, ops = _spine(node)
        a = _math(first, env)
        for step in ops:
            b = _math(step.right, env)
            try:
                a = _math_binop(step.op, a, b)
            except ExpressionError as err:
                raise ExpressionError(err.message, step.pos, err.hint) from None
            except ZeroDivisionError:
                raise ExpressionError("division by zero", step.pos) from None
            except ValueError as err:
                raise ExpressionError(f"shapes {list(a.shape)} and {list(b.shape)} do not fit for "
                                      f"'{step.op}'", step.pos) from err
        return a
    if isinstance(node, Compare):
        a, b = _math(node.left, env), _math(node.right, env)
        ops = {"<": sp.Lt, "<=": sp.Le, ">": sp.Gt, ">=": sp.Ge, "==": sp.Eq, "!=": sp.Ne}
        return arr(np.frompyfunc(ops[node.op], 2, 1)(a, b))
    if isinstance(node, Call):
        func = LIBRARY[node.func]
        args = [_math(a, env) for a in node.args]
        kwargs = {k: _math_option(v, env) for k, v in node.options}
        if node.dim is not None and not node.options:
            kwargs["dim"] = node.dim
        try:
            return arr(func.math(*args, **kwargs))
        except ExpressionError as err:
            raise ExpressionError(err.message, node.pos, err.hint) from None
        except (ValueError, IndexError, np.exceptions.AxisError) as err:
            raise ExpressionError(f"{node.func}(): {_shape_message(err)}", node.pos) from None
    if isinstance(node, Index):
        base = _math(node.base, env)
        if len(node.index) > base.ndim:
            raise ExpressionError(f"too many indices for a value of shape {list(base.shape)}", node.pos)
        try:
            _check_bounds(node.index, base.shape)
            return arr(base[node.index])
        except IndexError as err:
            raise ExpressionError(f"index out of range: {err}", node.pos) from None
    raise ExpressionError(f"cannot read {type(node).__name__}", node.pos)


def _math_option(value: Any, env: Mapping[str, Arr]) -> Any:
    """An option's math meaning: an expression is read, a decimal stays exact."""
    if isinstance(value, Node):
        return _math(value, env)
    if isinstance(value, Fraction):
        return sp.Rational(value.numerator, value.denominator)
    return value


def _check_bounds(index: tuple, shape: tuple) -> None:
    for i, n in zip(index, shape):
        if isinstance(i, int) and not -n <= i < n:
            raise IndexError(f"index {i} for a dimension of size {n}")


def _math_binop(op: str, a: Arr, b: Arr) -> Arr:
    if op == "+":
        return arr(a + b)
    if op == "-":
        return arr(a - b)
    if op == "*":
        return arr(a * b)
    if op == "/":
        return arr(a / b)
    if op == "**":
        _guard_power(a, b)
        return arr(a ** b)
    if op == "@":
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("@ needs vectors or matrices")
        return arr(np.matmul(a, b))
    raise ValueError(op)


def _guard_power(a: Arr, b: Arr) -> None:
    """Refuse constant powers whose exact value would be astronomically large.

    SymPy computes a constant power exactly, and not only of plain numbers: sqrt(2)**(10**10)
    becomes 2**5000000000. The digits are bounded by |exponent| · max(|log10 base|, 1); the 1
    covers rationals near 1, whose numerator and denominator grow even when the value does not."""
    shape = np.broadcast_shapes(a.shape, b.shape)
    for base, exp in zip(np.broadcast_to(a, shape).ravel(), np.broadcast_to(b, shape).ravel()):
        if _power_digits(base, exp) > MAX_POWER_DIGITS:
            raise ExpressionError(f"the constant power ({_short(base)})**({_short(exp)}) is too large "
                                  "to compute exactly")


def _power_digits(base, exp) -> float:
    """An upper bound of the digits of the exact ``base**exp`` (0 when it is not a constant)."""
    if not (isinstance(base, sp.Basic) and isinstance(exp, sp.Basic)) or base.free_symbols or exp.free_symbols:
        return 0.0
    if base.is_zero or base.is_finite is False or exp.is_finite is False:
        return 0.0  # 0**n, zoo**n and b**oo are not computed digit by digit
    e = sp.Abs(exp).evalf(5)
    b = sp.Abs(sp.log(sp.Abs(base), 10)).evalf(5)
    if not (e.is_finite and b.is_finite):
        return 0.0
    return float("inf") if e > 10 ** 300 else float(e) * max(float(b), 1.0)


def _short(value, digits: int = 30) -> str:
    """``value`` as text of at most about ``digits`` characters (a huge integer has no short str)."""
    try:
        text = str(value)
    except ValueError:  # beyond Python's int-to-text limit
        text = ""
    return text if text and len(text) <= digits else str(sp.N(value, 3))


# --- the torch reading --------------------------------------------------------------------

TorchFn = Callable[[Mapping[str, Any]], Any]


def to_torch(node: Node) -> TorchFn:
    """The torch meaning of ``node``: a function of an environment (name -> tensor)."""
    if isinstance(node, Num):
        value = int(node.value) if node.is_int else float(node.value)
        return lambda env: value
    if isinstance(node, Name):
        name = node.id
        if name in CONSTANTS:
            value = CONSTANTS[name][1]
            return lambda env: value
        return lambda env: env[name]
    if isinstance(node, Neg):
        inner = to_torch(node.operand)
        return lambda env: -inner(env)
    if isinstance(node, BinOp):
        first_node, ops = _spine(node)
        first = to_torch(first_node)
        steps = [(TORCH_BINOPS[b.op], to_torch(b.right)) for b in ops]

        def chain(env):
            acc = first(env)
            for op, right in steps:
                acc = op(acc, right(env))
            return acc
        return chain
    if isinstance(node, Compare):
        left, right = to_torch(node.left), to_torch(node.right)
        op = TORCH_CMPOPS[node.op]
        return lambda env: op(_tensorize(left(env), env), right(env))
    if isinstance(node, Call):
        func = LIBRARY[node.func]
        args = [to_torch(a) for a in node.args]
        kwargs = {k: float(v) if isinstance(v, Fraction) else v for k, v in node.options
                  if not isinstance(v, Node)}
        if node.dim is not None and not node.options:
            kwargs["dim"] = node.dim
        tensor_kwargs = {k: to_torch(v) for k, v in node.options if isinstance(v, Node)}
        numbers = set(func.number_args)

        def call(env):
            values = [a(env) if i in numbers else _tensorize(a(env), env) for i, a in enumerate(args)]
            more = {k: _tensorize(fn(env), env) for k, fn in tensor_kwargs.items()}
            return func.torch(*values, **kwargs, **more)
        return call
    if isinstance(node, Index):
        base, index = to_torch(node.base), node.index
        if any(isinstance(i, slice) and i.step is not None and i.step < 0 for i in index):
            return lambda env: _index_backwards(base(env), index)
        return lambda env: base(env)[index]
    raise ExpressionError(f"cannot read {type(node).__name__}", node.pos)


def _index_backwards(t, index: tuple):
    """``t[index]`` where a slice steps backwards, which torch's own indexing refuses:
    each such slice becomes the explicit list of the positions it picks."""
    dim = 0
    for i in index:
        if isinstance(i, int):
            t = t.select(dim, i)
            continue
        picked = list(range(t.shape[dim])[i])
        t = t.index_select(dim, torch.tensor(picked, dtype=torch.long, device=t.device))
        dim += 1
    return t


DTYPE_KEY = "_dtype"  # the environment entry naming the dtype under test (no user name starts with _)


def _tensorize(x, env):
    """Library functions get tensors: a bare number becomes a 0-d tensor of the dtype under
    test, so that it never promotes the computation to another dtype."""
    if isinstance(x, torch.Tensor):
        return x
    return torch.tensor(x, dtype=env[DTYPE_KEY])


TORCH_BINOPS = {
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
    "/": lambda a, b: a / b, "**": lambda a, b: a ** b, "@": lambda a, b: a @ b,
}
TORCH_CMPOPS = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
                 ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
                 "==": lambda a, b: a == b, "!=": lambda a, b: a != b}
