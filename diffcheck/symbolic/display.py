"""Exact derivatives as formulas a person can read, for the Markdown report.

A derivative of a vector or matrix function is a matrix (rows: the output's entries,
columns: the inputs' entries). It is shown as one matrix in LaTeX, never entry by entry:
all of it when it is small, else its corners with ``\\cdots``, ``\\vdots`` and ``\\ddots``
between them. Subexpressions that the shown entries share (the sum of exponentials in a
softmax Jacobian) are named once, ``u_{0} = …``, so that each entry stays short. Nothing
bigger than :data:`MAX_NODES` operations is printed: the report says how big it is instead
(printing the LaTeX of a sum of 1024 exponentials takes longer than checking it, and nobody
reads it).
"""

from __future__ import annotations

import sympy as sp

MAX_NODES = 400   # an entry (or a shared subexpression) larger than this is not printed
MAX_SIDE = 4      # rows or columns shown in full up to this many; beyond, the corners
MAX_NAMED = 4     # shared subexpressions named at most
MIN_SHARED = 4    # a shared subexpression is named when it has at least this many operations


def _small(expr, limit: int = MAX_NODES) -> bool:
    if not isinstance(expr, sp.Basic):
        return True
    for count, _ in enumerate(sp.preorder_traversal(expr)):
        if count >= limit:
            return False
    return True


def _picked(n: int) -> list[int | None]:
    """Indexes shown of ``n``: all, or the first two, an ellipsis (None) and the last."""
    if n <= MAX_SIDE:
        return list(range(n))
    return [0, 1, None, n - 1]


def _too_big(expr) -> str:
    return rf"\text{{(more than {MAX_NODES} operations: not shown)}}"


MAX_TERMS = 6     # a sum of more terms is shown as its first two, \cdots and its last
MAX_WHOLE = 20000  # nodes beyond which a formula is not even abbreviated


def _latex(expr) -> str:
    if _small(expr):
        return sp.latex(expr, order="none")
    if isinstance(expr, sp.Add) and len(expr.args) > MAX_TERMS:
        terms = list(expr.args)
        if all(_small(t, MAX_NODES // 8) for t in terms[:2] + terms[-1:]):
            shown = [sp.latex(t, order="none") for t in (terms[0], terms[1], terms[-1])]
            text = f"{shown[0]} + {shown[1]} + \\cdots + {shown[2]}"
            return text.replace("+ -", "- ") + rf" \; \text{{({len(terms)} terms)}}"
    if isinstance(expr, sp.Pow) and isinstance(expr.base, sp.Add) and _small(expr.exp):
        inner = _latex(expr.base)
        if not inner.startswith(r"\text{(more"):
            if expr.exp == -1:
                return rf"\frac{{1}}{{{inner}}}"
            return rf"\left({inner}\right)^{{{sp.latex(expr.exp)}}}"
    return _too_big(expr)


def _shared(exprs: list) -> tuple[list[tuple[sp.Symbol, sp.Expr]], list]:
    """Common subexpressions of ``exprs`` worth a name (big enough, at most MAX_NAMED, the
    biggest first); smaller ones are put back."""
    if not exprs or not all(_small(e, MAX_WHOLE) for e in exprs):
        return [], exprs
    names = sp.numbered_symbols("u_")
    try:
        pairs, reduced = sp.cse(exprs, symbols=names, order="none")
    except Exception:  # cse is an aid to reading: never a reason to lose the formula
        return [], exprs
    kept: list[tuple[sp.Symbol, sp.Expr]] = []
    back: dict = {}
    for symbol, value in pairs:
        value = value.xreplace(back)
        if sp.count_ops(value) >= MIN_SHARED and len(kept) < MAX_NAMED:
            kept.append((symbol, value))
        else:
            back[symbol] = value
    # a name that stands for a whole entry hides it: the entry is shown instead
    whole = {e for e in reduced if isinstance(e, sp.Symbol)}
    for symbol, value in list(kept):
        if symbol in whole:
            back[symbol] = value
    kept = [(s, v) for s, v in kept if s not in back]
    reduced = [e.xreplace(back) for e in reduced]
    kept = [(s, v.xreplace(back)) for s, v in kept]
    # renumber the kept names u_0, u_1, … in order
    renamed = {s: sp.Symbol(f"u_{i}", real=True) for i, (s, _) in enumerate(kept)}
    kept = [(renamed[s], v.xreplace(renamed)) for s, v in kept]
    reduced = [e.xreplace(renamed) for e in reduced]
    return kept, reduced


def derivative_display(target) -> tuple[str, str]:
    """``(label, latex)`` of a :class:`~diffcheck.symbolic.Target`: one formula, a matrix
    capped in size, with shared subexpressions named."""
    rows, cols = target.shape
    show_rows, show_cols = _picked(rows), _picked(cols)
    cells = [(i, j) for i in show_rows for j in show_cols if i is not None and j is not None]
    exprs = [target.exprs[i * cols + j] for i, j in cells]
    named, reduced = _shared(exprs)
    shown = dict(zip(cells, reduced))
    label = _label(target, rows, cols)
    if rows == 1 and cols == 1:
        body = _latex(shown[(0, 0)])
    else:
        lines = []
        for i in show_rows:
            if i is None:
                lines.append(" & ".join(r"\vdots" if j is not None else r"\ddots" for j in show_cols))
                continue
            lines.append(" & ".join(_latex(shown[(i, j)]) if j is not None else r"\cdots" for j in show_cols))
        body = r"\begin{pmatrix}" + r" \\ ".join(lines) + r"\end{pmatrix}"
    where = [f"{sp.latex(s)} = {_latex(v)}" for s, v in named]
    latex = body + (r", \quad \text{where } " + r", \; ".join(where) if where else "")
    return label, latex


def _label(target, rows: int, cols: int) -> str:
    what = target.label
    if rows == 1 and cols == 1:
        return what
    size = f"{rows} × {cols}"
    axes = f"rows {_span(target.rows)}, columns {_span(target.cols)}"
    corners = "" if rows <= MAX_SIDE and cols <= MAX_SIDE else "; its corners"
    return f"{what} ({size}: {axes}{corners})"


def _span(names: list[str]) -> str:
    if len(names) == 1:
        return names[0]
    if len(names) == 2:
        return f"{names[0]}, {names[1]}"
    return f"{names[0]} … {names[-1]}"


class _Value:
    """A function's values as a target: a column (rows: its entries), or its matrix."""

    label = "value"

    def __init__(self, exprs: list, rows: list[str], cols: list[str]):
        self.exprs, self.rows, self.cols = exprs, rows, cols

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)


def value_display(value) -> str:
    """The LaTeX of a vector or matrix function's value (a NumPy array of expressions): a
    column, or a matrix when it has two axes, capped in size, with shared subexpressions
    named."""
    if getattr(value, "ndim", 1) == 2:
        rows, cols = value.shape
        target = _Value(list(value.ravel()), [str(i) for i in range(rows)], [str(j) for j in range(cols)])
    else:
        flat = list(value.ravel()) if hasattr(value, "ravel") else list(value)
        target = _Value(flat, [str(i) for i in range(len(flat))], ["value"])
    return derivative_display(target)[1]
