"""Compiling a case: its tree read as mathematics, the exact derivatives it asks for, and
its torch implementation.

:func:`compile_case` turns a :class:`~diffcheck.case.Case` into a :class:`CompiledCase`, or
raises a :class:`CaseFileError` placed at the offending file, line and column. Variables and
constants become SymPy symbols (one per element, real), so that the exact function is
evaluated at exactly the inputs and data torch sees in the dtype under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import sympy as sp

from . import derive
from ..case import Case, Check
from .cache import DerivationCache, environment_key, key_of
from .dag import ExprList, from_sympy
from ..errors import CaseFileError, ExpressionError
from ..language import DTYPE_KEY, Node, parse, to_math, to_torch
from ..language.library import Arr, arr
from ..language.torch_key import OPT_IN_HINT, compile_torch, import_allowed, resolve_import


@dataclass
class Target:
    """Exact expressions for one check, flattened row-major: rows are output entries,
    columns input entries (``cols == ["value"]`` for the value check)."""

    label: str
    exprs: list[sp.Expr]
    rows: list[str]
    cols: list[str]
    wrt: str | None = None  # for intermediates: the let step

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.cols)

    def to_state(self, symbols: Sequence[sp.Symbol]) -> dict:
        """Plain data for the derivation cache: the expressions as one Program."""
        program = self.exprs.program if isinstance(self.exprs, ExprList) else from_sympy(list(self.exprs), symbols)
        return {"label": self.label, "program": program, "rows": list(self.rows), "cols": list(self.cols),
                "wrt": self.wrt}

    @classmethod
    def from_state(cls, state: dict, symbols: Sequence[sp.Symbol]) -> "Target":
        return cls(state["label"], ExprList(state["program"], symbols), state["rows"], state["cols"], state["wrt"])

    def entry(self, j: int) -> str:
        r, c = divmod(j, len(self.cols))
        if self.label == "value":
            return self.rows[r]
        order = {"hessian": "²", "derivative2": "²", "derivative3": "³"}.get(self.label, "")
        if self.label.startswith("derivative") and self.label[10:].isdigit() and int(self.label[10:]) > 3:
            order = f"^{self.label[10:]}"
        return f"∂{order}{self.rows[r]} / ∂{self.cols[c]}"


def symbols_for(name: str, shape: tuple[int, ...]) -> Arr:
    """One real SymPy symbol per element: ``x`` for a scalar, ``x_0``, ``X_0_1`` otherwise."""
    if not shape:
        return arr(sp.Symbol(name, real=True))
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(shape):
        out[idx] = sp.Symbol(f"{name}_{'_'.join(map(str, idx))}", real=True)
    return out


def entry_names(name: str, shape: tuple[int, ...]) -> list[str]:
    if not shape:
        return [name]
    return [f"{name}[{','.join(map(str, idx))}]" for idx in np.ndindex(shape)]


@dataclass
class CompiledCase:
    """A case ready to check: math meaning, symbols, and the torch implementation."""

    case: Case
    var_symbols: dict[str, Arr]
    const_symbols: dict[str, Arr]
    const_values: dict[str, np.ndarray]
    let_math: dict[str, Arr]
    output: Arr
    checks: tuple[Check, ...]
    trees: dict[str, Node]
    torch_output: Callable[[Mapping[str, Any]], Any]
    torch_let: list[tuple[str, Callable[[Mapping[str, Any]], Any]]]
    _targets: dict[str, list[Target]] = field(default_factory=dict)
    #: sizes of exact values on a grid (check.py), shared by the dtypes that share the grid
    grid_scales: dict[tuple, float] = field(default_factory=dict)
    #: formula texts of worst points (check.py), by (label, wrt, entry)
    formulas: dict[tuple, str] = field(default_factory=dict)
    #: where derivations are kept across runs (None: derived every time)
    cache: DerivationCache | None = None
    #: expression graphs of targets that are plain lists (the value), by label (pipeline._program)
    programs: dict[str, Any] = field(default_factory=dict)
    #: targets' sensitivity to the saved outputs torch's backward reads (saved_output_sensitivity)
    sensitivities: dict[int, Any] = field(default_factory=dict)

    @property
    def symbolic_constants(self) -> list[np.ndarray]:
        """Values of the constants that are symbols, in ``symbols`` order."""
        return [self.const_values[n] for n in self.const_symbols]

    @property
    def symbols(self) -> list[sp.Symbol]:
        """Every scalar symbol in evaluation order: variables, then constants."""
        out: list[sp.Symbol] = []
        for a in list(self.var_symbols.values()) + list(self.const_symbols.values()):
            out.extend(a.ravel())
        return out

    @property
    def out_shape(self) -> tuple[int, ...]:
        return self.output.shape

    def input_names(self) -> list[str]:
        cols: list[str] = []
        for v in self.case.variables:
            cols += entry_names(v.name, v.shape)
        return cols

    def output_names(self) -> list[str]:
        return entry_names("y", self.out_shape)

    def forward(self, variables: Sequence[Any], constants: Mapping[str, Any], dtype,
                on_let: Callable[[str, Any], Any] | None = None):
        """The torch implementation at one point (or a vmapped batch)."""
        env: dict[str, Any] = {DTYPE_KEY: dtype, **constants}
        env.update(zip((v.name for v in self.case.variables), variables))
        for name, fn in self.torch_let:
            value = fn(env)
            if on_let is not None:
                on_let(name, value)
            env[name] = value
        return self.torch_output(env)

    def targets(self, check: Check) -> list[Target]:
        """The exact expressions a check compares against: derived once per compiled case,
        and across runs through the derivation cache (:mod:`diffcheck.cache`) when a run
        has it on."""
        key = f"{check.kind}{check.order}"
        if key not in self._targets:
            self._targets[key] = self._derived(check)
        return self._targets[key]

    def derivation_key(self, check: Check) -> str:
        """The cache key of ``check``: everything its derivatives depend on."""
        case = self.case
        content = {
            "expr": case.expr,
            "let": [list(step) for step in case.let],
            "variables": [[v.name, list(v.shape)] for v in case.variables],
            "constants": {name: [list(value.shape), value.ravel().tolist()]
                          for name, value in self.const_values.items()},
            "symbolic_constants": list(self.const_symbols),
            "check": [check.kind, check.order],
        }
        return key_of(environment_key(derive.symengine_enabled()), content)

    def _derived(self, check: Check) -> list[Target]:
        """The targets of ``check``: from the cache when it holds them, else derived (and stored)."""
        if self.cache is None:
            return _targets(self, check)
        key = self.derivation_key(check)
        symbols = self.symbols
        stored = self.cache.get(key)
        if stored is not None and all(t["program"].nsym == len(symbols) for t in stored):
            return [Target.from_state(t, symbols) for t in stored]
        targets = _targets(self, check)
        self.cache.put(key, [t.to_state(symbols) for t in targets])
        return targets

    def saved_output_sensitivity(self, target: Target) -> ExprList | None:
        """Per entry of ``target``, how much torch's derivative moves when the outputs its
        backward reads (σ for σ' = σ(1 − σ)) carry a rounding each
        (:func:`derive.saved_output_sensitivity`); None where there are none."""
        key = id(target)
        if key not in self.sensitivities:
            check = next((c for c in self.checks if c.kind != "intermediates"
                          and any(t is target for t in self.targets(c))), None)
            found = None
            if check is not None:
                kind = "jacobian" if check.kind == "gradient" else check.kind
                found = derive.saved_output_sensitivity(kind, list(self.output.ravel()), _flat_vars(self),
                                                        self.symbols, check.order or 1)
            self.sensitivities[key] = (target, found)  # the target is held, so its id stays its own
        return self.sensitivities[key][1]

    def value_target(self) -> Target:
        if "value" not in self._targets:
            self._targets["value"] = [Target("value", list(self.output.ravel()), self.output_names(), ["value"])]
        return self._targets["value"][0]


def _flat_vars(c: CompiledCase) -> list[sp.Symbol]:
    out: list[sp.Symbol] = []
    for a in c.var_symbols.values():
        out.extend(a.ravel())
    return out


def _jacobian(outputs: Sequence[sp.Expr], wrt: Sequence[sp.Symbol], symbols: Sequence[sp.Symbol]) -> ExprList:
    """d outputs[i] / d wrt[k], row-major, every shared piece derived once (diffcheck.derive)."""
    return derive.jacobian(outputs, wrt, symbols)


def _targets(c: CompiledCase, check: Check) -> list[Target]:
    outs = list(c.output.ravel())
    xs = _flat_vars(c)
    if check.kind in ("gradient", "jacobian"):
        return [Target(check.kind, _jacobian(outs, xs, c.symbols), c.output_names(), c.input_names())]
    if check.kind == "hessian":
        return [Target("hessian", derive.hessian(outs[0], xs, c.symbols), c.input_names(), c.input_names())]
    if check.kind == "derivative":
        return [Target(check.label, derive.nth_derivative(outs[0], xs[0], check.order, c.symbols),
                       c.output_names(), c.input_names())]
    if check.kind == "intermediates":
        return [_intermediate(c, name) for name in c.let_math]
    raise ValueError(check.kind)


def _intermediate(c: CompiledCase, step: str) -> Target:
    """d output / d step, holding everything computed before the step fixed: the later
    steps and the output are rebuilt with the step replaced by fresh symbols."""
    shape = c.let_math[step].shape
    fresh = symbols_for(f"__{step}", shape)
    env = {**c.var_symbols, **c.const_symbols, **_exact_constants(c.const_values, c.const_symbols)}
    after = False
    for name, tree_key in ((n, f"let.{n}") for n in c.let_math):
        if name == step:
            env[name] = fresh
            after = True
        elif after:
            env[name] = to_math(c.trees[tree_key], env)
        else:
            env[name] = c.let_math[name]
    out = to_math(c.trees["expr"], env)
    subs = dict(zip(fresh.ravel(), c.let_math[step].ravel()))
    exprs = [sp.diff(f, z).xreplace(subs) for f in out.ravel() for z in fresh.ravel()]
    return Target("intermediates", exprs, c.output_names(), entry_names(step, shape), wrt=step)


def _exact_constants(const_values: Mapping[str, np.ndarray], const_symbols: Mapping[str, Arr]) -> dict[str, Arr]:
    """The constants that enter the math as exact integers (those without symbols)."""
    return {n: arr(np.vectorize(sp.Integer, otypes=[object])(v.astype(int)))
            for n, v in const_values.items() if n not in const_symbols}


def _undefined_everywhere(value: Arr) -> bool:
    """An entry holds zoo or nan: a constant division by zero (x/0), log(0)…"""
    return any(isinstance(e, sp.Basic) and e.has(sp.zoo, sp.nan) for e in value.ravel())


def _small_integers(values: np.ndarray) -> bool:
    return bool(values.size) and bool(np.all(values == np.round(values))) and bool(np.all(np.abs(values) <= 256))


def _const_array(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def compile_case(case: Case) -> CompiledCase:
    """Parse and read every expression of ``case`` in order (constants, let, expr, torch);
    raise CaseFileError, placed at its key, on any problem."""
    var_symbols = {v.name: symbols_for(v.name, v.shape) for v in case.variables}
    const_values = _constant_values(case)
    # Small whole numbers are exact in every dtype: they enter the math as numbers (class
    # indices need that, and formulas read better); other data stays symbolic, to be
    # evaluated at the value the dtype under test holds.
    exact = {n: v for n, v in const_values.items() if _small_integers(v)}
    const_symbols = {n: symbols_for(n, v.shape) for n, v in const_values.items() if n not in exact}
    env: dict[str, Arr] = {**var_symbols, **const_symbols, **_exact_constants(const_values, const_symbols)}
    trees: dict[str, Node] = {}
    let_math: dict[str, Arr] = {}
    torch_let = []
    for name, text in case.let:
        key = f"let.{name}"
        trees[key], let_math[name] = _read_key(case, key, text, env)
        env[name] = let_math[name]
        torch_let.append((name, to_torch(trees[key])))
    trees["expr"], output = _read_key(case, "expr", case.expr, env)
    torch_output = _torch_output(case, set(var_symbols) | set(const_values) | set(let_math), trees["expr"])
    checks = case.checks if case.checks is not None else (
        (Check("gradient"),) if output.ndim == 0 else (Check("jacobian"),))
    _validate_checks(case, checks, output, let_math)
    return CompiledCase(case, var_symbols, const_symbols, const_values, let_math, output, checks,
                        trees, torch_output, torch_let)


def _constant_values(case: Case) -> dict[str, np.ndarray]:
    out = {}
    for name, value in case.constants.items():
        try:
            out[name] = _const_array(value)
        except (ValueError, TypeError):
            raise CaseFileError(f"constant {name!r} is not a number or a rectangular nested list",
                                case.where(f"constants.{name}"), case=case.name) from None
    return out


def _read_key(case: Case, key: str, text: str, env: Mapping[str, Arr]) -> tuple[Node, Arr]:
    """The tree and the exact value of one expression of the case (``let.NAME`` or ``expr``)."""
    try:
        tree = parse(text)
        value = to_math(tree, env)
    except ExpressionError as err:
        raise placed(err, case, key) from None
    except RecursionError:
        raise CaseFileError(f"`{key}` of case {case.name!r} is too deeply nested to read", case.where(key),
                            "split it into `let` steps", case=case.name) from None
    if value.size == 0:
        raise CaseFileError(f"`{key}` of case {case.name!r} has no entries (shape {list(value.shape)}): "
                            "an empty slice?", case.where(key), "check the slice bounds", case=case.name)
    if _undefined_everywhere(value):
        raise CaseFileError(f"`{key}` of case {case.name!r} divides by a constant zero (or takes log(0), "
                            "...): its value is undefined", case.where(key), case=case.name)
    return tree, value


def _torch_output(case: Case, names: set[str], expr_tree: Node) -> Callable:
    """The implementation under test: the Python API's callable, the `torch` key, or `expr`
    read with torch meanings."""
    _check_imports(case)
    if case.function is not None:  # the Python API's callable (diffcheck.check_function)
        return case.function
    if case.torch is not None:
        try:
            return compile_torch(case.torch, names, case.imports, case.allow_imports)
        except ExpressionError as err:
            raise placed(err, case, "torch") from None
    return to_torch(expr_tree)


def _check_imports(case: Case) -> None:
    """`imports:` runs code: refused without the project's opt-in (diffcheck's own examples
    excepted), and each import resolved now, so that a failure points at its line."""
    for name, spec in case.imports.items():
        where = case.where(f"imports.{name}")
        if not import_allowed(spec, case.allow_imports):
            raise CaseFileError(f"`imports.{name}` ({spec}) would run Python code, and this project has "
                                "not allowed imports", where, OPT_IN_HINT, case=case.name)
        try:
            resolve_import(spec, case.allow_imports)
        except ExpressionError as err:
            raise CaseFileError(f"`imports.{name}`: {err.message}", where, err.hint, case=case.name) from None


def placed(err: ExpressionError, case: Case, key: str) -> CaseFileError:
    loc = case.where(key)
    return CaseFileError(f"in `{key}` of case {case.name!r}: {err.message}",
                         loc.shifted(err.offset) if loc.line > 0 else loc, err.hint, case=case.name)


def _validate_checks(case: Case, checks, output: Arr, let_math) -> None:
    where = case.where("check")
    for check in checks:
        if check.kind in ("gradient", "hessian") and output.ndim != 0:
            raise CaseFileError(f"`{check.kind}` needs a scalar output, but `expr` has shape {list(output.shape)}",
                                where, "use `jacobian` for a vector output", case=case.name)
        if check.kind == "derivative":
            if output.ndim != 0 or len(case.variables) != 1 or case.variables[0].shape:
                raise CaseFileError("`{derivative: n}` needs a scalar function of one scalar variable",
                                    where, case=case.name)
        if check.kind == "intermediates" and not let_math:
            raise CaseFileError("`intermediates` needs `let` steps", where, "add a `let:` mapping",
                                case=case.name)
