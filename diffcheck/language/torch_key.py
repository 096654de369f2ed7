"""The `torch:` key: an implementation under test, written as a torch expression.

Parsed by the same allowlist discipline as the case language (``ast.parse``, never
``eval``). Visible names: ``torch``, ``F`` (torch.nn.functional), the case's variables,
constants, ``let`` steps and ``imports``. Attribute chains must start at ``torch`` or ``F``,
may not touch names that begin with ``_``, and may only pass through the modules listed in
:data:`ALLOWED_MODULES`; functions that read or write files, load code or change global state
are refused (:data:`REFUSED`).
"""

from __future__ import annotations

import ast
import importlib
import types
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from ..errors import ExpressionError
from . import MAX_DEPTH, _suggest, parse_python

ALLOWED_MODULES = {
    "torch": torch, "torch.nn": torch.nn, "torch.nn.functional": F, "torch.special": torch.special,
    "torch.linalg": torch.linalg, "torch.fft": torch.fft,
}
#: torch names a case file may not reach: file and network access, code loading, global state
REFUSED = {
    "load", "save", "from_file", "hub", "jit", "package", "ops", "classes", "library", "utils",
    "backends", "distributed", "multiprocessing", "cuda", "mps", "xpu", "compile", "export",
    "manual_seed", "seed", "initial_seed", "set_default_dtype", "set_default_device",
    "set_default_tensor_type", "set_num_threads", "set_num_interop_threads", "set_printoptions",
    "set_grad_enabled", "set_rng_state", "use_deterministic_algorithms", "set_flush_denormal",
    "set_anomaly_enabled", "autograd", "func", "fx", "onnx", "profiler", "testing", "storage",
    "UntypedStorage", "TypedStorage", "cpp", "overrides", "serialization", "dynamo", "compiler",
    "register_buffer", "register_parameter", "apply", "add_module", "set_", "data_ptr",
    "untyped_storage", "storage_offset", "share_memory_", "pin_memory", "tolist", "numpy",
    "backward", "register_hook", "retain_grad", "requires_grad_", "grad", "data", "to_dense",
}  # and every name with "hook" in it (register_post_accumulate_grad_hook, …)

TorchFn = Callable[[Mapping[str, Any]], Any]


def compile_torch(text: str, names: set[str], imports: Mapping[str, str]) -> TorchFn:
    """Compile the `torch:` expression into a function of an environment.

    ``names`` are the case's variables, constants and ``let`` steps (looked up in the
    environment at call time); ``imports`` map a name to ``"package.module:attribute"``.
    """
    lead = len(text) - len(text.lstrip()) if isinstance(text, str) else 0
    tree = parse_python(text, "torch expression")
    return _TorchCompiler(lead, names, imports).build(tree, 0)


def resolve_import(spec: str) -> Any:
    """Import ``"package.module:attribute"`` (the user's own code, named in the case)."""
    module_name, colon, attr = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not (module_name and colon and attr):
        raise ExpressionError(f"an import is written \"package.module:attribute\", not {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as err:  # the user's module failed to import: say so plainly
        raise ExpressionError(f"cannot import {module_name!r}: {type(err).__name__}: {err}") from None
    obj = module
    for part in attr.split("."):
        if part.startswith("_") or not hasattr(obj, part):
            raise ExpressionError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


class _TorchCompiler:
    def __init__(self, lead: int, names: set[str], imports: Mapping[str, str]):
        self.lead, self.names, self.imports = lead, names, imports

    def pos(self, node: ast.AST) -> int:
        return self.lead + getattr(node, "col_offset", 0)

    def build(self, node: ast.AST, depth: int) -> TorchFn:
        if depth > MAX_DEPTH:
            raise ExpressionError("the torch expression is too deeply nested", self.pos(node))
        pos = self.pos(node)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, (int, float, str, bool, type(None))):
                return lambda env: value
            raise ExpressionError(f"the literal {value!r} is not allowed", pos)
        if isinstance(node, ast.Name):
            return self.name(node, pos)
        if isinstance(node, ast.Attribute):
            obj = self.attribute(node)
            return lambda env: obj
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.build(node.operand, depth + 1)
            return (lambda env: -inner(env)) if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            from . import _BINOPS, _TORCH_BINOPS
            if type(node.op) not in _BINOPS:
                raise ExpressionError("this operator is not allowed", pos)
            op = _TORCH_BINOPS[_BINOPS[type(node.op)]]
            left, right = self.build(node.left, depth + 1), self.build(node.right, depth + 1)
            return lambda env: op(left(env), right(env))
        if isinstance(node, ast.Compare) and len(node.ops) == 1:
            from . import _CMPOPS, _TORCH_CMPOPS
            if type(node.ops[0]) not in _CMPOPS:
                raise ExpressionError("only < <= > >= comparisons are allowed", pos)
            op = _TORCH_CMPOPS[_CMPOPS[type(node.ops[0])]]
            left, right = self.build(node.left, depth + 1), self.build(node.comparators[0], depth + 1)
            return lambda env: op(left(env), right(env))
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self.build(e, depth + 1) for e in node.elts]
            return lambda env: tuple(i(env) for i in items)
        if isinstance(node, ast.Subscript):
            base = self.build(node.value, depth + 1)
            index = self.build(node.slice, depth + 1)
            return lambda env: base(env)[index(env)]
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self.build(p, depth + 1) for p in (node.lower, node.upper, node.step)]
            return lambda env: slice(*(None if p is None else p(env) for p in parts))
        if isinstance(node, ast.Call):
            return self.call(node, depth, pos)
        raise ExpressionError(f"'{type(node).__name__}' is not allowed in a torch expression", pos)

    def name(self, node: ast.Name, pos: int) -> TorchFn:
        name = node.id
        if name.startswith("_"):
            raise ExpressionError(f"name {name!r} is not allowed (names may not start with '_')", pos)
        if name == "torch":
            return lambda env: torch
        if name == "F":
            return lambda env: F
        if name in self.names:
            return lambda env: env[name]
        if name in self.imports:
            # resolved now, so that a wrong spec is a case-file error placed at the name
            try:
                obj = resolve_import(self.imports[name])
            except ExpressionError as err:
                raise ExpressionError(f"import {name!r}: {err.message}", pos, err.hint) from None
            return lambda env: obj
        raise ExpressionError(f"unknown name {name!r} in torch expression", pos,
                              _suggest(name, list(self.names) + list(self.imports) + ["torch", "F"]))

    def attribute(self, node: ast.Attribute) -> Any:
        chain: list[tuple[str, int]] = []
        cur: ast.AST = node
        while isinstance(cur, ast.Attribute):
            chain.append((cur.attr, self.pos(cur) + len(ast.unparse(cur.value)) + 1))
            cur = cur.value
        if not isinstance(cur, ast.Name) or cur.id not in ("torch", "F"):
            raise ExpressionError("attribute chains must start at `torch` or `F`", self.pos(node))
        obj: Any = torch if cur.id == "torch" else F
        path = "torch" if cur.id == "torch" else "torch.nn.functional"
        for attr, pos in reversed(chain):
            if attr.startswith("_"):
                raise ExpressionError(f"attribute {attr!r} is not allowed (names may not start with '_')", pos)
            if attr in REFUSED or "hook" in attr:
                raise ExpressionError(f"`{path}.{attr}` is not allowed in a case file", pos)
            if not hasattr(obj, attr):
                raise ExpressionError(f"`{path}` has no attribute {attr!r}", pos,
                                      _suggest(attr, [a for a in dir(obj) if not a.startswith("_")]))
            obj = getattr(obj, attr)
            path = f"{path}.{attr}"
            if isinstance(obj, types.ModuleType) and path not in ALLOWED_MODULES:
                raise ExpressionError(f"module `{path}` is not allowed in a case file", pos)
        return obj

    def call(self, node: ast.Call, depth: int, pos: int) -> TorchFn:
        func = self.build(node.func, depth + 1)
        if isinstance(node.func, ast.Attribute):
            target = self.attribute(node.func)
            if isinstance(target, types.ModuleType) or not callable(target):
                raise ExpressionError(f"`{ast.unparse(node.func)}` cannot be called", pos)
        args = [self.build(a, depth + 1) for a in node.args]
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError("'*' arguments are not allowed", pos)
        kwargs = {}
        for kw in node.keywords:
            if kw.arg is None or kw.arg.startswith("_"):
                raise ExpressionError("'**' and private keywords are not allowed", self.pos(kw))
            kwargs[kw.arg] = self.build(kw.value, depth + 1)

        def call(env):
            fn = func(env)
            return fn(*(a(env) for a in args), **{k: v(env) for k, v in kwargs.items()})
        return call

