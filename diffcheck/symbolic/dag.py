"""Many exact expressions as one shared graph: :class:`Program`.

A Jacobian of softmax over 128 logits has 16384 entries, and every one of them contains the
same 128-term sum. Held as separate SymPy trees that sum is walked, printed and evaluated
16384 times; held as a graph it is one node. A :class:`Program` is that graph, flattened:
nodes in topological order (children first), each an operation with child node ids, plus
one output node per entry. Identical subexpressions are one node (hash-consing).

Programs are built from SymPy or SymEngine expressions, are what the fast reference
(:mod:`diffcheck.reference`) evaluates, pickle small (the derivation cache stores them), and
give back the SymPy expression of any entry on demand (:class:`ExprList`), so reports and
claims still see ordinary SymPy expressions.

Everything a node can mean is a row of the op table (:mod:`.ops`); any other SymPy object becomes a
``foreign`` node that keeps the SymPy expression itself, so a Program never loses meaning.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any, Iterable

import sympy as sp

from .ops import FUNCS, OPS, RELATIONS, SYMENGINE_NAMES, SYMENGINE_RELATIONS



_SYMPY_FUNCS = {cls: name for name, cls in FUNCS.items()}
_SYMPY_RELATIONS = {cls: name for name, cls in RELATIONS.items()}
_SYMPY_SPECIAL = {sp.oo: "oo", -sp.oo: "-oo", sp.zoo: "zoo", sp.nan: "nan"}
_SPECIAL_SYMPY = {v: k for k, v in _SYMPY_SPECIAL.items()}

_SE_FUNCS = SYMENGINE_NAMES
_SE_RELATIONS = SYMENGINE_RELATIONS
_SE_SPECIAL = {"Infinity": "oo", "NegativeInfinity": "-oo", "ComplexInfinity": "zoo", "NaN": "nan"}


class Program:
    """A DAG of exact expressions over ``nsym`` input columns.

    ``ops[i]``, ``args[i]`` (child ids, all < i) and ``data[i]`` describe node ``i``:
    ``sym`` (data: input column), ``num`` (an exact Fraction), ``float`` (a SymPy Float as
    (mpf tuple, precision)), ``const`` ("pi" or "E"), ``special`` ("oo", "-oo", "zoo",
    "nan"), ``bool``, the arithmetic ``add``/``mul``/``pow``, the functions of ``FUNCS``,
    ``heaviside`` (x, h0), ``dirac`` (x; data: order), ``max``/``min``, ``piecewise``
    (e1, c1, e2, c2, …), relations, ``and``/``or``/``not``, and ``foreign`` (data: a SymPy
    expression, evaluated only by mpmath). ``outputs[j]`` is the node of entry ``j``.
    """

    __slots__ = ("ops", "args", "data", "outputs", "nsym", "_sympy", "derived")

    def __init__(self, ops: list[str], args: list[tuple[int, ...]], data: list[Any],
                 outputs: list[int], nsym: int):
        self.ops, self.args, self.data, self.outputs, self.nsym = ops, args, data, outputs, nsym
        self._sympy: dict[int, sp.Basic] = {}
        self.derived: dict[str, Any] = {}  # what evaluators compute from it (not pickled)

    def __len__(self) -> int:
        return len(self.ops)

    def __getstate__(self):
        return {"ops": self.ops, "args": self.args, "data": self.data, "outputs": self.outputs,
                "nsym": self.nsym}

    def __setstate__(self, state):
        for key, value in state.items():
            setattr(self, key, value)
        self._sympy = {}
        self.derived = {}

    def select(self, entries: Sequence[int]) -> "Program":
        """The same graph with only ``entries`` as outputs (unused nodes stay; harmless)."""
        return Program(self.ops, self.args, self.data, [self.outputs[j] for j in entries], self.nsym)

    # -- back to SymPy ----------------------------------------------------------------------
    def sympy(self, j: int, symbols: Sequence[sp.Symbol]) -> sp.Expr:
        """Entry ``j`` as a SymPy expression of ``symbols`` (one per input column)."""
        return self.node_sympy(self.outputs[j], symbols)

    def node_sympy(self, node: int, symbols: Sequence[sp.Symbol]) -> sp.Basic:
        memo = self._sympy
        if node in memo:
            return memo[node]
        for i in _postorder(self.args, node, memo):
            memo[i] = _to_sympy(self.ops[i], [memo[a] for a in self.args[i]], self.data[i], symbols)
        return memo[node]


def _postorder(args: list[tuple[int, ...]], root: int, done) -> list[int]:
    """Nodes under ``root`` not yet in ``done``, children first."""
    order, seen, stack = [], set(), [root]
    while stack:
        i = stack[-1]
        if i in done or i in seen:
            stack.pop()
            continue
        pending = [a for a in args[i] if a not in done and a not in seen]
        if pending:
            stack.extend(pending)
        else:
            seen.add(i)
            order.append(i)
            stack.pop()
    return order


def _to_sympy(op: str, kids: list, data: Any, symbols: Sequence[sp.Symbol]) -> sp.Basic:
    if op == "sym":
        return symbols[data]
    if op == "num":
        return sp.Rational(data.numerator, data.denominator)
    if op == "float":
        mpf, prec = data
        return sp.Float._new(mpf, prec)
    if op == "const":
        return sp.pi if data == "pi" else sp.E
    if op == "special":
        return _SPECIAL_SYMPY[data]
    if op == "bool":
        return sp.true if data else sp.false
    if op == "add":
        return sp.Add(*kids)
    if op == "mul":
        return sp.Mul(*kids)
    if op == "pow":
        return sp.Pow(*kids)
    if op in FUNCS:
        return FUNCS[op](*kids)
    if op == "heaviside":
        return sp.Heaviside(*kids)
    if op == "dirac":
        return sp.DiracDelta(kids[0], data) if data else sp.DiracDelta(kids[0])
    if op == "max":
        return sp.Max(*kids)
    if op == "min":
        return sp.Min(*kids)
    if op == "piecewise":
        return sp.Piecewise(*zip(kids[0::2], kids[1::2]))
    if op in RELATIONS:
        return RELATIONS[op](*kids)
    if op == "and":
        return sp.And(*kids)
    if op == "or":
        return sp.Or(*kids)
    if op == "not":
        return sp.Not(kids[0])
    if op == "foreign":
        return data[0]
    raise ValueError(op)


class _Builder:
    """Hash-consing construction of a Program."""

    def __init__(self, symbols: Sequence[Any]):
        self.ops: list[str] = []
        self.args: list[tuple[int, ...]] = []
        self.data: list[Any] = []
        self.index: dict[tuple, int] = {}
        self.nsym = len(symbols)

    def node(self, op: str, args: tuple[int, ...] = (), data: Any = None) -> int:
        key = (op, args, data)
        found = self.index.get(key)
        if found is not None:
            return found
        self.ops.append(op)
        self.args.append(args)
        self.data.append(data)
        self.index[key] = len(self.ops) - 1
        return len(self.ops) - 1

    def program(self, outputs: list[int]) -> Program:
        return Program(self.ops, self.args, self.data, outputs, self.nsym)


def _walk(roots: Iterable[Any], children, convert) -> list[int]:
    """Post-order walk of several expression trees with memo; ``children(e)`` gives the
    sub-expressions to convert first (None: a leaf), ``convert(e, kid_ids)`` the node id."""
    memo: dict[Any, int] = {}
    out = []
    for root in roots:
        found = memo.get(root)
        if found is not None:
            out.append(found)
            continue
        stack = [[root, None]]
        while stack:
            top = stack[-1]
            e, kids = top
            if kids is None:
                if e in memo:
                    stack.pop()
                    continue
                kids = children(e)
                if kids is None:
                    memo[e] = convert(e, ())
                    stack.pop()
                    continue
                top[1] = kids
                pending = [[k, None] for k in kids if k not in memo]
                if pending:
                    stack.extend(pending)
                    continue
            stack.pop()
            if e not in memo:
                memo[e] = convert(e, tuple([memo[k] for k in kids]))
        out.append(memo[root])
    return out


#: SymPy classes read as one op each, by isinstance (subclasses too), in this order
_SYMPY_STRUCTURAL = ((sp.Piecewise, "piecewise"), (sp.Max, "max"), (sp.Min, "min"), (sp.And, "and"),
                     (sp.Or, "or"), (sp.Not, "not"), (sp.Heaviside, "heaviside"))


def _sympy_children(e: sp.Basic) -> list | None:
    """The operands of a SymPy node diffcheck reads (Piecewise flattened to expr, cond, ...;
    Heaviside with its value at 0), None for an atom or a foreign node."""
    if e.is_Atom:
        return None
    if isinstance(e, sp.Piecewise):
        return [x for pair in e.args for x in pair]
    cls = type(e)
    if (e.is_Add or e.is_Mul or e.is_Pow or cls in _SYMPY_FUNCS or cls in _SYMPY_RELATIONS
            or isinstance(e, (sp.Max, sp.Min, sp.And, sp.Or, sp.Not))):
        return list(e.args)
    if isinstance(e, sp.Heaviside):
        return [e.args[0], e.args[1] if len(e.args) > 1 else sp.S.Half]
    if isinstance(e, sp.DiracDelta):
        return [e.args[0]]
    return None  # foreign


def from_sympy(exprs: Iterable[sp.Basic], symbols: Sequence[sp.Symbol]) -> Program:
    """The Program of SymPy expressions of ``symbols`` (input column = position): one walk of
    the SymPy tree; ``convert`` maps each SymPy class to an op through the op table
    (symbolic/ops.py) and _SYMPY_STRUCTURAL, the irregular ones inline."""
    b = _Builder(symbols)
    column = {s: i for i, s in enumerate(symbols)}

    def convert(e, kids):
        if e in _SYMPY_SPECIAL:
            return b.node("special", (), _SYMPY_SPECIAL[e])
        if e.is_Symbol:
            if e in column:
                return b.node("sym", (), column[e])
            return _foreign(b, e, column)
        if e.is_Rational:
            return b.node("num", (), Fraction(int(e.p), int(e.q)))
        if e.is_Float:
            return b.node("float", (), (e._mpf_, e._prec))
        if e is sp.pi:
            return b.node("const", (), "pi")
        if e is sp.E:
            return b.node("const", (), "E")
        if e is sp.true or e is sp.false:
            return b.node("bool", (), bool(e))
        if not kids and not isinstance(e, sp.Piecewise):
            return _foreign(b, e, column)
        if e.is_Add:
            return b.node("add", kids)
        if e.is_Mul:
            return b.node("mul", kids)
        if e.is_Pow:
            return b.node("pow", kids)
        cls = type(e)
        if cls in _SYMPY_FUNCS:
            if len(kids) != OPS[_SYMPY_FUNCS[cls]].arity:
                return _foreign(b, e, column)
            return b.node(_SYMPY_FUNCS[cls], kids)
        if cls in _SYMPY_RELATIONS:
            return b.node(_SYMPY_RELATIONS[cls], kids)
        for kind, op in _SYMPY_STRUCTURAL:
            if isinstance(e, kind):
                return b.node(op, kids)
        if isinstance(e, sp.DiracDelta):
            order = int(e.args[1]) if len(e.args) > 1 else 0
            return b.node("dirac", kids, order)
        return _foreign(b, e, column)

    outputs = _walk(exprs, _sympy_children, convert)
    return b.program(outputs)


def _foreign(b: _Builder, e: sp.Basic, column: dict) -> int:
    """A node mpmath evaluates through lambdify: ``data`` = (expression, its columns)."""
    cols = tuple(sorted(column[s] for s in e.free_symbols if s in column))
    return b.node("foreign", (), (e, cols))


def from_symengine(exprs: Iterable[Any], symbols: Sequence[sp.Symbol]) -> Program:
    """The Program of SymEngine expressions; ``symbols`` are the SymPy symbols of the input
    columns (SymEngine symbols are matched by name)."""
    import symengine as se

    b = _Builder(symbols)
    column = {s.name: i for i, s in enumerate(symbols)}
    by_name = {s.name: s for s in symbols}
    E = se.E

    def children(e):
        name = type(e).__name__
        if name == "Pow" and e.args[0] == E:
            return [e.args[1]]
        if name in _SE_FUNCS or name in _SE_RELATIONS or name == "Pow":
            return list(e.args)
        return None

    def convert(e, kids):
        name = type(e).__name__
        if name == "Symbol":
            if e.name in column:
                return b.node("sym", (), column[e.name])
        elif isinstance(e, se.Integer):
            return b.node("num", (), Fraction(int(e)))
        elif isinstance(e, se.Rational):
            p, q = e.get_num_den()
            return b.node("num", (), Fraction(int(p), int(q)))
        elif name == "RealDouble":
            f = sp.Float(float(e))
            return b.node("float", (), (f._mpf_, f._prec))
        elif name == "Pi":
            return b.node("const", (), "pi")
        elif name == "Exp1":
            return b.node("const", (), "E")
        elif name in _SE_SPECIAL:
            return b.node("special", (), _SE_SPECIAL[name])
        elif name in ("BooleanTrue", "BooleanFalse"):
            return b.node("bool", (), name == "BooleanTrue")
        elif name == "Pow" and kids and len(kids) == 1:
            return b.node("exp", kids)
        elif name == "Pow":
            return b.node("pow", kids)
        elif name in _SE_RELATIONS:
            return b.node(_SE_RELATIONS[name], kids)
        elif name in _SE_FUNCS and kids:
            return b.node(_SE_FUNCS[name], kids)
        # anything else: back to SymPy, with the real symbols of the case
        expr = sp.sympify(e).xreplace({sp.Symbol(n): s for n, s in by_name.items()})
        return _foreign(b, expr, {s: i for i, s in enumerate(symbols)})

    outputs = _walk(exprs, children, convert)
    return b.program(outputs)


class ExprList(Sequence):
    """The exact expressions of a target, backed by a Program: entry ``j`` becomes a SymPy
    expression only when someone asks for it (a report's formula, a claim)."""

    def __init__(self, program: Program, symbols: Sequence[sp.Symbol],
                 exprs: Sequence[sp.Expr] | None = None):
        self.program = program
        self.symbols = list(symbols)
        self._exprs = list(exprs) if exprs is not None else None

    def __len__(self) -> int:
        return len(self.program.outputs)

    def __getitem__(self, j):
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        if self._exprs is not None:
            return self._exprs[j]
        if j < 0:
            j += len(self)
        if not 0 <= j < len(self):
            raise IndexError(j)
        return self.program.sympy(j, self.symbols)

    def __iter__(self):
        return (self[j] for j in range(len(self)))

    def __eq__(self, other):
        if isinstance(other, (list, tuple, ExprList)):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other))
        return NotImplemented

    def __repr__(self) -> str:
        return f"ExprList({len(self)} entries, {len(self.program)} nodes)"
