"""The `torch:` key: what an implementation under test may reach, and what it may not.

Attribute chains start at ``torch`` or ``F``, never touch a name that begins with ``_``,
pass only through allowed modules and refuse file access, code loading and global state;
``imports`` resolve ``"package.module:attribute"`` when the expression is compiled.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import make_case
from hypothesis import given, settings
from hypothesis import strategies as st

from diffcheck.pipeline import CheckOptions, check_case
from diffcheck.errors import CaseFileError, ExpressionError
from diffcheck.language import DTYPE_KEY
from diffcheck.language.torch_key import compile_torch, resolve_import

NAMES = {"x", "a", "b"}


def run(text: str, imports=None, dtype=torch.float64, **values):
    fn = compile_torch(text, NAMES, imports or {})
    env = {DTYPE_KEY: dtype, **{k: torch.as_tensor(v, dtype=dtype) for k, v in values.items()}}
    return fn(env)


# --- allowed ------------------------------------------------------------------------------

def test_torch_function():
    x = torch.tensor([-1.0, 0.0, 2.0], dtype=torch.float64)
    assert torch.equal(run("torch.sigmoid(x)", x=x), torch.sigmoid(x))


def test_functional_with_dim_keyword():
    x = torch.tensor([1.0, 2.0, 3.0], dtype=torch.float64)
    assert torch.equal(run("F.softmax(x, dim=-1)", x=x), F.softmax(x, dim=-1))


def test_unbound_tensor_method_detaches():
    x = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    y = compile_torch("torch.Tensor.detach(torch.sigmoid(x)) * x", NAMES, {})({DTYPE_KEY: torch.float64, "x": x})
    (g,) = torch.autograd.grad(y, x)
    assert g == torch.sigmoid(x.detach())  # the detached factor contributes no derivative


def test_string_keyword():
    a, b = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])
    assert run("F.mse_loss(a, b, reduction='sum')", a=a, b=b) == 5.0


@pytest.mark.parametrize("text", [
    "torch.special.expit(x)", "torch.linalg.vector_norm(x)", "torch.nn.functional.gelu(x)",
    "x[0:2] * 2", "torch.where(x > 0, x, 0.0)", "-x ** 2 @ x", "torch.stack([x, x])[1]",
    "torch.clamp(x, min=-1, max=None)",
])
def test_other_allowed_forms_compile_and_run(text):
    out = run(text, x=torch.tensor([0.5, -1.5, 2.0]))
    assert isinstance(out, torch.Tensor)


def test_compiling_calls_nothing(monkeypatch):
    """Compilation resolves names; the kernels run only when the environment arrives."""
    calls = []
    monkeypatch.setattr(torch, "sigmoid", lambda *a: calls.append(a) or a[0])
    fn = compile_torch("torch.sigmoid(x) + 1", NAMES, {})
    assert calls == []
    fn({DTYPE_KEY: torch.float64, "x": torch.tensor(1.0)})
    assert len(calls) == 1


# --- refused ------------------------------------------------------------------------------

REFUSED = [
    # (text, offset, words in the message)
    ("torch._C", 6, "may not start with '_'"),
    ("torch._C._nn.gelu(x)", 6, "may not start with '_'"),
    ("torch.load('model.pt')", 6, "`torch.load` is not allowed"),
    ("torch.save(x, 'f')", 6, "`torch.save` is not allowed"),
    ("torch.hub.load('a', 'b')", 6, "`torch.hub` is not allowed"),
    ("torch.utils", 6, "`torch.utils` is not allowed"),
    ("torch.utils.data.DataLoader", 6, "`torch.utils` is not allowed"),
    ("torch.ops.aten.sigmoid(x)", 6, "`torch.ops` is not allowed"),
    ("torch.jit.script", 6, "`torch.jit` is not allowed"),
    ("torch.autograd.grad", 6, "`torch.autograd` is not allowed"),
    ("torch.manual_seed(0)", 6, "`torch.manual_seed` is not allowed"),
    ("torch.set_default_dtype(torch.float16)", 6, "is not allowed"),
    ("torch.random.manual_seed(0)", 6, "`torch.random` is not in the torch key's allowlist"),
    ("torch.os.system('ls')", 6, "`torch.os` is not in the torch key's allowlist"),
    ("F.torch.load('f')", 2, "`torch.nn.functional.torch` is not in the torch key's allowlist"),
    ("torch.nn.modules", 9, "`torch.nn.modules` is not allowed in a case file"),
    ("torch.Tensor.register_hook(x, torch.sigmoid)", 13, "is not allowed"),
    ("torch.Tensor.register_post_accumulate_grad_hook(x, torch.sigmoid)", 13, "is not allowed"),
    ("torch.Tensor.backward(x)", 13, "is not allowed"),
    ("torch.Tensor.numpy(x)", 13, "is not allowed"),
    ("__import__('os')", 0, "may not start with '_'"),
    ("x.storage()", 2, "`.storage` is not allowed"),
    ("(x + 1).untyped_storage()", 8, "`.untyped_storage` is not allowed"),
    ("F.__dict__", 2, "may not start with '_'"),
    ("torch.Tensor.__init__", 13, "may not start with '_'"),
    ("torch.sigmoid.__self__", 14, "may not start with '_'"),
    ("torch.Tensor.__class__.__subclasses__()", 13, "may not start with '_'"),
    ("torch.nonexistent_fn(x)", 6, "has no attribute"),
    ("torch.sigmoid(x, _stacklevel=3)", 17, "private keyword"),
    ("F.softmax(x, **{'dim': 0})", 13, "'**'"),
    ("getattr(torch, 'load')", 0, "unknown name 'getattr'"),
    ("eval('1')", 0, "unknown name 'eval'"),
    ("open('f')", 0, "unknown name 'open'"),
    ("lambda: x", 0, "not allowed"),
    ("[t for t in x]", 0, "not allowed"),
    ("torch.sigmoid(x) if x else x", 0, "not allowed"),
    ("torch.nn(x)", 0, "cannot be called"),
    ("y * 2", 0, "unknown name 'y'"),
]


@pytest.mark.parametrize("text, offset, says", REFUSED, ids=[t for t, _, _ in REFUSED])
def test_refused(text, offset, says):
    with pytest.raises(ExpressionError) as info:
        compile_torch(text, NAMES, {})
    assert info.value.offset == offset, info.value.message
    assert says in info.value.message


def test_refused_names_are_never_called(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    calls = []
    monkeypatch.setattr(torch, "load", lambda *a, **k: calls.append(a))
    monkeypatch.setattr(torch, "save", lambda *a, **k: calls.append(a))
    for text in ["torch.load('m.pt')", "torch.save(x, 'm.pt')", "F.torch.load('m.pt')"]:
        with pytest.raises(ExpressionError):
            compile_torch(text, NAMES, {})
    assert calls == [] and not (tmp_path / "m.pt").exists()


TOKENS = ["torch", "F", ".", "sigmoid", "softmax", "Tensor", "detach", "_C", "__class__", "load", "hub", "x", "a",
          "(", ")", "[", "]", ",", ":", "=", "dim", "-1", "0", "2.5", "'sum'", "+", "*", "**", "@", "<", "lambda",
          "for", "in", "if", "else", " ", "__import__", "os", "nn", "functional", "linalg", "_", "\n", "{", "}"]


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(max_size=60), st.lists(st.sampled_from(TOKENS), max_size=30).map("".join)))
def test_junk_is_an_expression_error_and_nothing_else(text):
    try:
        compile_torch(text, NAMES, {})
    except ExpressionError as err:
        assert 0 <= err.offset <= max(len(text), 1)


def test_deep_nesting_is_an_expression_error():
    for text in ["torch" + ".a" * 5000, "-" * 10000 + "x", "torch.sigmoid(" * 300 + "x" + ")" * 300]:
        with pytest.raises(ExpressionError):
            compile_torch(text, NAMES, {})


def test_refusal_is_placed_in_the_case_file():
    case = make_case("bad", "sigmoid(x)", torch="torch.sigmoid(x) + torch._C")
    with pytest.raises(CaseFileError) as info:
        check_case(case)
    assert "torch" in str(info.value) and "_C" in str(info.value)
    assert info.value.location.column == 1 + len("torch.sigmoid(x) + torch.")


# --- imports ------------------------------------------------------------------------------

def test_import_resolves_and_is_called():
    assert run("f(4.0)", imports={"f": "math:sqrt"}) == 2.0
    assert run("g(x)", imports={"g": "torch.nn.functional:softplus"}, x=0.0) == pytest.approx(math.log(2))


def test_dotted_attribute_import():
    assert resolve_import("torch.nn:functional.softplus") is F.softplus


@pytest.mark.parametrize("spec, says", [
    ("no_such_module_xyz:f", "cannot import 'no_such_module_xyz'"),
    ("math:no_such_function", "has no attribute"),
    ("math:_private", "has no attribute"),
    ("math:sqrt.__call__", "has no attribute"),
    ("math", "package.module:attribute"),
    (":sqrt", "package.module:attribute"),
    ("math:", "package.module:attribute"),
])
def test_bad_import_spec_is_an_expression_error_at_the_name(spec, says):
    with pytest.raises(ExpressionError) as info:
        compile_torch("x + f(x)", NAMES, {"f": spec})
    assert says in info.value.message and info.value.offset == 4


def test_import_case_passes_through_check_case():
    case = make_case("imported_sigmoid", "sigmoid(x)", torch="sig(x)", imports={"sig": "torch:sigmoid"},
                     samples=8)
    report = check_case(case, CheckOptions(allow_imports=True))
    assert {r.status for r in report.results} == {"pass"}


def test_import_is_refused_without_the_projects_opt_in():
    case = make_case("imported_sigmoid", "sigmoid(x)", torch="sig(x)", imports={"sig": "torch:sigmoid"},
                     samples=8)
    with pytest.raises(CaseFileError) as info:
        check_case(case)
    assert "--allow-imports" in str(info.value) and "allow-imports = true" in str(info.value)
    assert "diffcheck_allow_imports" in str(info.value)
