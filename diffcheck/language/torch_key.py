"""The `torch:` key: an implementation under test, written as a torch expression.

Parsed by the same allowlist discipline as the case language (``ast.parse``, never ``eval``).
What it may name is a **positive allowlist** (:func:`allowlist`): every torch function a row of
the function library uses (derived from :mod:`.library`), the reviewed table of
:mod:`.torch_names` (functions of ``torch``, ``torch.nn.functional`` as ``F``,
``torch.special`` and ``torch.linalg``, tensor methods and their signatures), the case's
variables, constants and ``let`` steps, and the case's ``imports`` when the project has opted
in to them. Nothing else: no other module or class, no storage, no private name, no string
literal except a keyword value a listed function takes, no attribute of a value except a
listed tensor method (checked on the value when the expression runs: only a tensor has them).

Every call of a listed function is checked against its signature when the case is loaded
(argument count, keyword names, literal keyword values), so a typo is a case-file error with
the signature and "did you mean", not a torch error at run time.
"""

from __future__ import annotations

import ast
import dis
import functools
import importlib
import math
import os
import sys
import types
from dataclasses import dataclass
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F

from ..errors import ExpressionError
from . import MAX_DEPTH, MAX_NODES, suggest, parse_python
from . import torch_names as tn

TorchFn = Callable[[Mapping[str, Any]], Any]

#: the namespaces a chain may pass through, by full name
NAMESPACES: dict[str, Any] = {
    "torch": torch, "torch.nn": torch.nn, "torch.nn.functional": F, "torch.special": torch.special,
    "torch.linalg": torch.linalg, "torch.Tensor": torch.Tensor,
}
#: the modules whose code ``imports`` may name without the project's opt-in: diffcheck's own
#: deliberately broken kernels, used by its example cases (they ship with diffcheck and run no
#: code of the case file's choosing)
TRUSTED_IMPORT_MODULES = ("diffcheck.examples",)

OPT_IN_HINT = ("`imports:` runs the named module as Python code, so the project must allow it: "
               "run `diffcheck run --allow-imports`, or set `allow-imports = true` under "
               "[tool.diffcheck] in the pyproject.toml of the directory diffcheck runs from, "
               "or `diffcheck_allow_imports = true` in the pytest ini options")


# --- the allowlist ------------------------------------------------------------------------------

def _namespace_names() -> dict[int, list[str]]:
    """id(object) -> its public full names in the math namespaces."""
    out: dict[int, list[str]] = {}
    for path in ("torch", "torch.nn.functional", "torch.special", "torch.linalg"):
        ns = NAMESPACES[path]
        for name in dir(ns):
            if name.startswith("_"):
                continue
            try:
                obj = getattr(ns, name)
            except Exception:  # pragma: no cover - a lazy attribute that fails to load
                continue
            if callable(obj) and not isinstance(obj, (type, types.ModuleType)):
                out.setdefault(id(obj), []).append(f"{path}.{name}")
    return out


def _torch_callables(fn: Any, seen: set[int], found: list[Any]) -> None:
    """The torch callables ``fn`` (a library row's torch meaning) calls: itself when it is one,
    else those its code names (``torch.x``, ``F.x``), its closure holds, or its helpers call."""
    if id(fn) in seen:
        return
    seen.add(id(fn))
    if isinstance(fn, functools.partial):
        _torch_callables(fn.func, seen, found)
        return
    code = getattr(fn, "__code__", None)
    if code is None:
        found.append(fn)
        return
    module = getattr(fn, "__module__", "") or ""
    if not module.startswith("diffcheck"):
        found.append(fn)  # a torch Python function (F.softplus is Python code)
        return
    glob = getattr(fn, "__globals__", {})
    for cell in fn.__closure__ or ():
        try:
            value = cell.cell_contents
        except ValueError:
            continue
        if callable(value) and not isinstance(value, type):
            _torch_callables(value, seen, found)
    codes = [code] + [c for c in code.co_consts if isinstance(c, types.CodeType)]
    for co in codes:
        obj: Any = None
        for ins in dis.get_instructions(co):
            if ins.opname == "LOAD_GLOBAL":
                obj = glob.get(ins.argval)
                if callable(obj) and getattr(obj, "__module__", "").startswith("diffcheck"):
                    _torch_callables(obj, seen, found)
                    obj = None
            elif ins.opname in ("LOAD_ATTR", "LOAD_METHOD") and obj is not None:
                obj = getattr(obj, ins.argval, None)
                if callable(obj) and not isinstance(obj, (type, types.ModuleType)):
                    found.append(obj)
            else:
                obj = None


@functools.lru_cache(maxsize=1)
def allowlist() -> dict[str, tn.Sig | None]:
    """Every function the `torch:` key may call, by full name, with its signature when known:
    the library's torch functions (derived) and the reviewed table of :mod:`.torch_names`."""
    from .library import LIBRARY
    names = _namespace_names()
    allowed: dict[str, tn.Sig | None] = {}
    for func in LIBRARY.values():
        found: list[Any] = []
        _torch_callables(func.torch, set(), found)
        for obj in found:
            for full in names.get(id(obj), ()):
                if full.rsplit(".", 1)[1] not in tn.NEVER:
                    allowed[full] = tn.FUNCTIONS.get(full)
    for full, signature in tn.FUNCTIONS.items():
        path, _, name = full.rpartition(".")
        if hasattr(NAMESPACES[path], name) and name not in tn.NEVER:
            allowed[full] = signature
    return allowed


def _python_sig(obj: Any) -> tn.Sig | None:
    """The signature of a torch function written in Python (F.softplus), when not in the table."""
    import inspect
    try:
        params = inspect.signature(obj).parameters.values()
    except (TypeError, ValueError):
        return None
    parts, star = [], False
    for p in params:
        if p.name.startswith("_"):
            continue
        if p.kind is p.VAR_KEYWORD:
            return None
        if p.kind is p.VAR_POSITIONAL:
            parts.append("*" + p.name)
            star = True
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(p.name if p.default is p.empty else f"{p.name}=None")
    try:
        return tn.sig(", ".join(parts))
    except SyntaxError:  # pragma: no cover
        return None


# --- compiling -----------------------------------------------------------------------------------

@dataclass
class _Static:
    """What an expression is when it is compiled: a namespace, a listed function, a bound
    tensor method waiting for its call, a user import, or a value (known only at run time)."""

    kind: str            # "ns" | "fn" | "method" | "import" | "value"
    path: str = ""       # full name (namespaces, functions, methods)
    obj: Any = None      # the namespace, function or imported object
    sig: tn.Sig | None = None
    fn: TorchFn | None = None  # for values: the function of the environment
    base: TorchFn | None = None  # for methods: the tensor they are bound to


def compile_torch(text: str, names: set[str], imports: Mapping[str, str],
                  allow_imports: bool = True) -> TorchFn:
    """Compile the `torch:` expression into a function of an environment.

    ``names`` are the case's variables, constants and ``let`` steps (looked up in the
    environment at call time); ``imports`` map a name to ``"package.module:attribute"``;
    ``allow_imports`` is the project's opt-in (without it only diffcheck's own examples resolve).
    """
    lead = len(text) - len(text.lstrip()) if isinstance(text, str) else 0
    tree = parse_python(text, "torch expression")
    compiler = _TorchCompiler(lead, names, imports, allow_imports)
    return compiler.value(tree, 0)


def import_allowed(spec: str, allow_imports: bool) -> bool:
    """Without the project's opt-in, only a function defined in diffcheck's own examples
    module (not a name it imported, such as its ``torch``)."""
    if allow_imports:
        return True
    module, _, attr = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if module not in TRUSTED_IMPORT_MODULES or not attr or "." in attr or attr.startswith("_"):
        return False
    obj = getattr(importlib.import_module(module), attr, None)
    return callable(obj) and getattr(obj, "__module__", None) == module


def resolve_import(spec: str, allow_imports: bool = True) -> Any:
    """Import ``"package.module:attribute"`` (the user's own code, named in the case).

    Modules are found as pytest finds them from its rootdir: in the directory diffcheck runs
    from first, then on ``sys.path``."""
    module_name, colon, attr = spec.partition(":") if isinstance(spec, str) else ("", "", "")
    if not (module_name and colon and attr):
        raise ExpressionError(f"an import is written \"package.module:attribute\", not {spec!r}")
    if not import_allowed(spec, allow_imports):
        raise ExpressionError(f"importing {module_name!r} is not allowed here", 0, OPT_IN_HINT)
    cwd = os.getcwd()
    added = cwd not in sys.path and "" not in sys.path
    if added:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except BaseException as err:  # the user's module failed to import: say so plainly
        if isinstance(err, (KeyboardInterrupt, SystemExit)) and not isinstance(err, SystemExit):
            raise
        hint = (f"check that {module_name.split('.')[0]!r} is a package or module in {cwd} or on "
                "PYTHONPATH, and that it imports without error")
        raise ExpressionError(f"cannot import {module_name!r}: {type(err).__name__}: {err}", 0, hint) from None
    finally:
        if added:
            try:
                sys.path.remove(cwd)
            except ValueError:  # pragma: no cover
                pass
    obj = module
    for part in attr.split("."):
        if part.startswith("_") or not hasattr(obj, part):
            raise ExpressionError(f"{module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _is_function_class(obj: Any) -> bool:
    return isinstance(obj, type) and issubclass(obj, torch.autograd.Function)


def _need_tensor(value: Any, what: str) -> Any:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{what} needs a tensor, got {type(value).__name__} "
                        "(only tensors have methods in the torch key)")
    return value


class _TorchCompiler:
    def __init__(self, lead: int, names: set[str], imports: Mapping[str, str], allow_imports: bool):
        self.lead, self.names, self.imports, self.allow_imports = lead, names, imports, allow_imports
        self.allowed = allowlist()
        self.nodes = 0

    def pos(self, node: ast.AST) -> int:
        return self.lead + getattr(node, "col_offset", 0)

    def attr_pos(self, node: ast.Attribute) -> int:
        end = getattr(node, "end_col_offset", None)  # the attribute's name ends the node
        return self.lead + (end - len(node.attr) if end is not None else node.col_offset)

    # values -------------------------------------------------------------------------------

    def value(self, node: ast.AST, depth: int) -> TorchFn:
        """``node`` as a value (a tensor, a number, a tuple…): a function of the environment."""
        static = self.build(node, depth)
        if static.kind == "value":
            return static.fn
        pos = self.pos(node)
        if static.kind == "method" and static.path[1:] in tn.RESULT_FIELDS:  # slogdet(A).sign
            return _result_field(static.base, static.path[1:])
        if static.kind == "method":
            raise ExpressionError(f"the method `{static.path}` must be called", pos,
                                  f"write `{ast.unparse(node)}()`")
        if static.kind == "fn" or static.kind == "import":
            raise ExpressionError(f"`{ast.unparse(node)}` is a function: call it", pos)
        raise ExpressionError(f"`{static.path}` is a namespace, not a value", pos)

    def build(self, node: ast.AST, depth: int) -> _Static:
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ExpressionError(f"the torch expression has more than {MAX_NODES} parts", self.pos(node),
                                  "split it into `let` steps")
        if depth > MAX_DEPTH:
            raise ExpressionError(f"the torch expression is nested more than {MAX_DEPTH} levels deep",
                                  self.pos(node), "split it into `let` steps")
        pos = self.pos(node)
        if isinstance(node, ast.Constant):
            value = node.value
            if isinstance(value, str):
                raise ExpressionError(f"the text {_short(value)} is not allowed here", pos,
                                      "text is allowed only as the value of a keyword that takes one, "
                                      "such as reduction='sum'")
            if isinstance(value, bool) or value is None or value is Ellipsis:
                return _val(lambda env: value)
            if isinstance(value, int):
                if abs(value) > 10 ** 300:
                    raise ExpressionError("number out of range", pos)
                return _val(lambda env: value)
            if isinstance(value, float):
                return _val(lambda env: value)
            raise ExpressionError(f"the literal {value!r} is not allowed", pos)
        if isinstance(node, ast.Name):
            return self.name(node, pos)
        if isinstance(node, ast.Attribute):
            return self.attribute(node, depth)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            inner = self.value(node.operand, depth + 1)
            return _val((lambda env: -inner(env)) if isinstance(node.op, ast.USub) else inner)
        if isinstance(node, ast.BinOp):
            return self.binop(node, depth)
        if isinstance(node, ast.Compare):
            from . import TORCH_CMPOPS, CMPOPS
            if len(node.ops) != 1:
                raise ExpressionError("write one comparison at a time (a < b, not a < b < c)", pos,
                                      "combine two with `torch.logical_and`")
            if type(node.ops[0]) not in CMPOPS:
                raise ExpressionError("only the comparisons == != < <= > >= are allowed", pos)
            op = TORCH_CMPOPS[CMPOPS[type(node.ops[0])]]
            left, right = self.value(node.left, depth + 1), self.value(node.comparators[0], depth + 1)
            return _val(lambda env: op(left(env), right(env)))
        if isinstance(node, (ast.Tuple, ast.List)):
            items = [self.value(e, depth + 1) for e in node.elts]
            if isinstance(node, ast.List):
                return _val(lambda env: [i(env) for i in items])
            return _val(lambda env: tuple(i(env) for i in items))
        if isinstance(node, ast.Subscript):
            base = self.value(node.value, depth + 1)
            index = self.value(node.slice, depth + 1)
            return _val(lambda env: _subscript(base(env), index(env)))
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self.value(p, depth + 1) for p in (node.lower, node.upper, node.step)]
            return _val(lambda env: slice(*(None if p is None else p(env) for p in parts)))
        if isinstance(node, ast.Call):
            return self.call(node, depth, pos)
        if isinstance(node, ast.Starred):
            raise ExpressionError("'*' arguments are not allowed", pos)
        raise ExpressionError(f"{describe(node)} is not allowed in a torch expression", pos)

    def binop(self, node: ast.BinOp, depth: int) -> _Static:
        from . import BINOPS, OP_TEXT, TORCH_BINOPS
        # a chain a + b + c + ... is read along its left spine without recursion: its length
        # is bounded by the number of parts, not by the nesting limit
        spine: list[ast.BinOp] = []
        cur: ast.AST = node
        while isinstance(cur, ast.BinOp):
            if type(cur.op) not in BINOPS:
                op = OP_TEXT.get(type(cur.op), type(cur.op).__name__)
                raise ExpressionError(f"the operator {op!r} is not allowed", self.pos(cur))
            spine.append(cur)
            cur = cur.left
            self.nodes += 1
        first = self.value(cur, depth + 1)
        steps = [(_power if isinstance(b.op, ast.Pow) else TORCH_BINOPS[BINOPS[type(b.op)]],
                  self.value(b.right, depth + 1)) for b in reversed(spine)]

        def chain(env):
            acc = first(env)
            for op, right in steps:
                acc = op(acc, right(env))
            return acc
        return _val(chain)

    def name(self, node: ast.Name, pos: int) -> _Static:
        name = node.id
        if name.startswith("_"):
            raise ExpressionError(f"name {name!r} is not allowed (names may not start with '_')", pos)
        if name == "torch":
            return _Static("ns", "torch", torch)
        if name == "F":
            return _Static("ns", "torch.nn.functional", F)
        if name in self.names:
            return _val(lambda env: env[name])
        if name in self.imports:
            # resolved now, so that a wrong spec is a case-file error placed at the name
            try:
                obj = resolve_import(self.imports[name], self.allow_imports)
            except ExpressionError as err:
                raise ExpressionError(f"import {name!r}: {err.message}", pos, err.hint) from None
            return _Static("import", name, obj)
        hint = suggest(name, list(self.names) + list(self.imports) + ["torch", "F"])
        if hint is None and f"torch.{name}" in self.allowed:
            hint = f"write torch.{name}"
        raise ExpressionError(f"unknown name {name!r} in torch expression", pos, hint)

    def attribute(self, node: ast.Attribute, depth: int) -> _Static:
        attr, pos = node.attr, self.attr_pos(node)
        base = self.build(node.value, depth + 1)  # first: the leftmost refusal is reported
        if attr.startswith("_"):
            raise ExpressionError(f"attribute {attr!r} is not allowed (names may not start with '_')", pos)
        if base.kind == "ns":
            return self.namespace_attribute(base, attr, pos)
        if base.kind == "import":
            if attr == "apply" and _is_function_class(base.obj):
                return _Static("import", f"{base.path}.apply", base.obj.apply)
            raise ExpressionError(f"`{base.path}.{attr}` is not allowed: an import is called, and only "
                                  "a torch.autograd.Function's `.apply` is reached through one", pos)
        if base.kind == "value":
            return self.value_attribute(base.fn, attr, pos)
        raise ExpressionError(f"`{base.path}` has no attributes in the torch key", pos)

    def namespace_attribute(self, base: _Static, attr: str, pos: int) -> _Static:
        path = f"{base.path}.{attr}"
        if path in NAMESPACES and path != "torch.nn":
            return _Static("ns", path, NAMESPACES[path])
        if path == "torch.nn":
            return _Static("ns", path, torch.nn)
        if base.path == "torch.nn":
            raise ExpressionError(f"`{path}` is not allowed in a case file: only torch.nn.functional "
                                  "is reached through torch.nn", pos,
                                  "use the function of torch.nn.functional (F.relu, not torch.nn.ReLU)")
        if base.path == "torch.Tensor":
            if attr in tn.METHODS:
                return _Static("fn", path, getattr(torch.Tensor, attr), tn.METHODS[attr].with_self())
            if attr in tn.PROPERTIES:
                raise ExpressionError(f"`{path}` is a property: write `x.{attr}`", pos)
            raise self.refusal(path, attr, pos, list(tn.METHODS))
        if base.path == "torch" and attr in tn.DTYPES:
            value = getattr(torch, attr)
            return _val(lambda env: value)
        if base.path == "torch" and attr in tn.NUMBERS:
            value = float(getattr(torch, attr))
            return _val(lambda env: value)
        if path in self.allowed:
            signature = self.allowed[path] or _python_sig(getattr(base.obj, attr))
            return _Static("fn", path, getattr(base.obj, attr), signature)
        here = [n.rsplit(".", 1)[1] for n in self.allowed if n.rsplit(".", 1)[0] == base.path]
        if base.path == "torch":
            here += ["nn", "special", "linalg", "Tensor", *tn.DTYPES, *tn.NUMBERS]
        raise self.refusal(path, attr, pos, here)

    def refusal(self, path: str, attr: str, pos: int, choices: list[str]) -> ExpressionError:
        if attr in tn.NEVER or "hook" in attr or attr.startswith("set_") or attr.endswith("Storage"):
            return ExpressionError(f"`{path}` is not allowed in a case file (it reads or writes files, "
                                   "loads code, draws random numbers or changes global state)", pos)
        owner = NAMESPACES.get(path.rsplit(".", 1)[0])
        elsewhere = [f"{ns}.{attr}" for ns in ("torch", "torch.nn.functional", "torch.special", "torch.linalg")
                     if f"{ns}.{attr}" in self.allowed and f"{ns}.{attr}" != path]
        hint = (f"use {elsewhere[0].replace('torch.nn.functional.', 'F.')}" if elsewhere
                else suggest(attr, choices))
        if hint is None and attr in tn.METHODS:
            hint = f"use the tensor method x.{attr}(...)"
        if owner is not None and not hasattr(owner, attr):
            return ExpressionError(f"`{path.rsplit('.', 1)[0]}` has no attribute {attr!r}", pos, hint)
        return ExpressionError(f"`{path}` is not in the torch key's allowlist", pos,
                               hint or "see the functions listed in diffcheck/language/torch_names.py")

    def value_attribute(self, base: TorchFn, attr: str, pos: int) -> _Static:
        if attr in tn.METHODS:
            return _Static("method", f".{attr}", None, tn.METHODS[attr], base=base)
        if attr in tn.PROPERTIES:
            def prop(env):
                return getattr(_need_tensor(base(env), f"`.{attr}`"), attr)
            return _val(prop)
        if attr in tn.RESULT_FIELDS:
            return _val(_result_field(base, attr))
        hint = suggest(attr, list(tn.METHODS) + list(tn.PROPERTIES))
        if f"torch.{attr}" in self.allowed:
            hint = f"use torch.{attr}(x)"
        elif f"torch.nn.functional.{attr}" in self.allowed:
            hint = f"use F.{attr}(x)"
        elif f"torch.special.{attr}" in self.allowed:
            hint = f"use torch.special.{attr}(x)"
        if attr in tn.NEVER or "hook" in attr:
            return_msg = f"`.{attr}` is not allowed in a case file (it reaches files, code or global state)"
            raise ExpressionError(return_msg, pos, hint if hint and hint.startswith("use") else None)
        raise ExpressionError(f"`.{attr}` is not an allowed tensor method or attribute", pos, hint)

    # calls ---------------------------------------------------------------------------------

    def call(self, node: ast.Call, depth: int, pos: int) -> _Static:
        func = self.build(node.func, depth + 1)
        text = ast.unparse(node.func)
        if func.kind == "ns":
            raise ExpressionError(f"`{text}` cannot be called", pos)
        if func.kind == "value":
            raise ExpressionError(f"`{text}` cannot be called: only listed functions, tensor methods "
                                  "and imports are called", pos)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise ExpressionError("'*' arguments are not allowed", self.pos(arg))
        for kw in node.keywords:
            if kw.arg is None:
                raise ExpressionError("'**' arguments are not allowed", self.pos(kw))
            if kw.arg.startswith("_"):
                raise ExpressionError(f"private keyword {kw.arg!r} is not allowed", self.pos(kw))
        signature = func.sig
        if signature is not None:
            self.check_call(node, text, signature, pos)
        string_args = signature.string_args if signature is not None else {}
        args = [self.argument(a, depth, string_args.get(i)) for i, a in enumerate(node.args)]
        kwargs = {kw.arg: self.keyword(kw, depth, signature) for kw in node.keywords}

        if func.kind == "method":
            base, name = func.base, func.path[1:]

            def method(env):
                target = _need_tensor(base(env), f"`.{name}()`")
                return getattr(target, name)(*(a(env) for a in args), **{k: v(env) for k, v in kwargs.items()})
            return _val(method)
        fn = func.obj
        if func.kind == "fn" and func.path.startswith("torch.Tensor."):
            name = func.path

            def unbound(env):
                values = [a(env) for a in args]
                if values:
                    _need_tensor(values[0], f"`{name}`")
                return fn(*values, **{k: v(env) for k, v in kwargs.items()})
            return _val(unbound)

        def call(env):
            return fn(*(a(env) for a in args), **{k: v(env) for k, v in kwargs.items()})
        return _val(call)

    def argument(self, node: ast.AST, depth: int, string_kind: str | None) -> TorchFn:
        if string_kind and isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
            if len(value) > 200 or not all(c.isalnum() or c in ",.->_ " for c in value):
                raise ExpressionError(f"{string_kind} {_short(value)} may hold only letters, ',', '.', "
                                      "'->' and spaces", self.pos(node))
            return lambda env: value
        return self.value(node, depth + 1)

    def keyword(self, kw: ast.keyword, depth: int, signature: tn.Sig | None) -> TorchFn:
        node = kw.value
        literal = isinstance(node, ast.Constant) or (
            isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub) and isinstance(node.operand, ast.Constant))
        if signature is not None and kw.arg in signature.fixed:
            allowed = signature.fixed[kw.arg]
            value = _literal(node) if literal else None
            if not literal or value not in allowed or isinstance(value, bool) != isinstance(allowed[0], bool):
                raise ExpressionError(f"`{kw.arg}=` may only be {' or '.join(map(repr, allowed))} in a case "
                                      "file (another value draws random numbers or changes state)",
                                      self.pos(node))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            choices = signature.strings.get(kw.arg, ()) if signature is not None else ()
            if node.value not in choices:
                if choices:
                    raise ExpressionError(f"`{kw.arg}=` takes one of {', '.join(map(repr, choices))}, not "
                                          f"{_short(node.value)}", self.pos(node),
                                          suggest(node.value, choices))
                raise ExpressionError(f"the text {_short(node.value)} is not allowed as `{kw.arg}=`",
                                      self.pos(node), "text is allowed only as the value of a keyword "
                                      "that takes one, such as reduction='sum'")
            value = node.value
            return lambda env: value
        return self.value(node, depth + 1)

    def check_call(self, node: ast.Call, text: str, signature: tn.Sig, pos: int) -> None:
        given = [kw.arg for kw in node.keywords]
        shown = f"{text}{signature.text}" if len(signature.overloads) == 1 else \
            f"{text} takes {signature.text}"
        for kw in node.keywords:
            if kw.arg not in signature.names():
                raise ExpressionError(f"{text}() has no keyword {kw.arg!r}; its signature is {shown}",
                                      self.pos(kw), suggest(kw.arg, sorted(signature.names())))
        if len(set(given)) != len(given):
            raise ExpressionError(f"{text}() got a keyword twice", pos)
        problems = [_fit(p, len(node.args), given) for p in signature.overloads]
        if all(problems):
            raise ExpressionError(f"{text}() {problems[0]}; its signature is {shown}", pos)


def _fit(params: tn.Params, nargs: int, keywords: list[str]) -> str | None:
    """Why a call with ``nargs`` positional arguments and ``keywords`` does not fit ``params``."""
    if nargs > len(params.positional) and params.varargs is None:
        return f"takes at most {len(params.positional)} positional argument(s), got {nargs}"
    for name in keywords:
        if name not in params.positional and name not in params.keyword_only:
            return f"takes no keyword {name!r} in this form"
        if name in params.positional[:nargs]:
            return f"got {name!r} both by position and as a keyword"
    for name in params.positional[nargs:params.required]:
        if name not in keywords:
            return f"is missing the argument {name!r}"
    for name in params.required_keywords:
        if name not in keywords:
            return f"is missing the keyword {name!r}"
    return None


def _power(a: Any, b: Any) -> Any:
    """``a ** b``; of two Python integers only when the result is of sane size: Python computes
    ``9**9**9`` exactly, in C, where no time limit of this process can stop it."""
    if isinstance(a, int) and isinstance(b, int) and abs(a) > 1 and b > 0:
        if b * math.log2(abs(a)) > 4096:
            raise ValueError(f"the constant power {a}**{b} is too large to compute")
    return a ** b


def _literal(node: ast.AST) -> Any:
    if isinstance(node, ast.UnaryOp):
        return -node.operand.value
    return node.value


def _result_field(base: TorchFn, attr: str) -> TorchFn:
    """``.values``, ``.sign``…: a field of the named tuples torch returns, of nothing else."""
    def field(env):
        value = base(env)
        if not (isinstance(value, tuple) and type(value).__module__ == "torch.return_types"):
            raise TypeError(f"`.{attr}` is a field of what torch.max, torch.linalg.slogdet… "
                            f"return, not of {type(value).__name__}")
        return getattr(value, attr)
    return field


def _val(fn: TorchFn) -> _Static:
    return _Static("value", fn=fn)


def _subscript(base: Any, index: Any) -> Any:
    if not isinstance(base, (torch.Tensor, tuple, list, torch.Size)):
        raise TypeError(f"only tensors and tuples can be indexed, not {type(base).__name__}")
    return base[index]


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


def describe(node: ast.AST) -> str:
    from . import describe as describe
    return describe(node)
