"""The `torch:` key's positive allowlist: derived from the library, plus the reviewed table of
diffcheck/language/torch_names.py; PyTorch idioms that work, and what is refused, with the
spelling to use."""

from __future__ import annotations

import inspect
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import make_case

from diffcheck.errors import ExpressionError
from diffcheck.language import DTYPE_KEY
from diffcheck.language import torch_names as tn
from diffcheck.language.library import LIBRARY
from diffcheck.language.torch_key import NAMESPACES, _namespace_names, _torch_callables, allowlist, compile_torch
from diffcheck.pipeline import CheckOptions, check_case

NAMES = {"x", "A"}


def run(text: str, imports=None, allow=True):
    x = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64)
    A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 3.0, 0.25], [0.0, 0.25, 1.5]], dtype=torch.float64)
    return compile_torch(text, NAMES, imports or {}, allow)({DTYPE_KEY: torch.float64, "x": x, "A": A})


# --- the table ----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(LIBRARY))
def test_every_library_row_allows_its_torch_function(name):
    """Adding a row to the library allows its torch function with no edit of torch_names.py;
    a row whose torch meaning names no torch function would leave its spelling refused."""
    found: list = []
    _torch_callables(LIBRARY[name].torch, set(), found)
    names = _namespace_names()
    derived = {n for obj in found for n in names.get(id(obj), ())}
    assert derived and derived <= set(allowlist())


def test_nothing_allowed_is_on_the_never_list():
    for full in allowlist():
        name = full.rsplit(".", 1)[1]
        assert name not in tn.NEVER and not name.startswith(("_", "set_")) and "hook" not in name, full


def test_every_table_entry_exists_in_this_torch():
    for full in tn.FUNCTIONS:
        path, _, name = full.rpartition(".")
        assert hasattr(NAMESPACES[path], name), full
    for name in tn.METHODS:
        assert hasattr(torch.Tensor, name), name


def test_table_signatures_use_torchs_parameter_names():
    """Where torch's signature is inspectable (functions written in Python), the table's
    keywords are among its parameters: a call the table accepts, torch accepts."""
    for full, sig in tn.FUNCTIONS.items():
        path, _, name = full.rpartition(".")
        try:
            real = inspect.signature(getattr(NAMESPACES[path], name)).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind in (p.VAR_KEYWORD, p.VAR_POSITIONAL) for p in real.values()):
            continue
        assert sig.names() <= set(real), (full, sig.names() - set(real))


# --- idioms -----------------------------------------------------------------------------------

IDIOMS = [
    ("A.T @ x", lambda x, A: A.T @ x),
    ("A.mT", lambda x, A: A.mT),
    ("x.pow(2).sum()", lambda x, A: x.pow(2).sum()),
    ("x.exp().mean(dim=0, keepdim=True)", lambda x, A: x.exp().mean(dim=0, keepdim=True)),
    ("x.abs().sqrt().log()", lambda x, A: x.abs().sqrt().log()),
    ("x.clamp(min=-1, max=1)", lambda x, A: x.clamp(min=-1, max=1)),
    ("x.reshape(3, 1).squeeze(1).unsqueeze(0).transpose(0, 1).permute(1, 0).view(3)",
     lambda x, A: x.reshape(3, 1).squeeze(1).unsqueeze(0).transpose(0, 1).permute(1, 0).view(3)),
    ("x.detach() * x", lambda x, A: x.detach() * x),
    ("x.softmax(dim=0) + x.log_softmax(0)", lambda x, A: x.softmax(dim=0) + x.log_softmax(0)),
    ("torch.where(x == 0.5, x, x * 2)", lambda x, A: torch.where(x == 0.5, x, x * 2)),
    ("torch.where(x != 0.5, x, -x)", lambda x, A: torch.where(x != 0.5, x, -x)),
    ("F.gelu(x, approximate='tanh')", lambda x, A: F.gelu(x, approximate="tanh")),
    ("F.mse_loss(x, x * 2, reduction='sum')", lambda x, A: F.mse_loss(x, x * 2, reduction="sum")),
    ("torch.max(x, dim=0).values", lambda x, A: torch.max(x, dim=0).values),
    ("torch.linalg.slogdet(A).logabsdet", lambda x, A: torch.linalg.slogdet(A).logabsdet),
    ("torch.linalg.slogdet(A)[1]", lambda x, A: torch.linalg.slogdet(A)[1]),
    ("torch.einsum('ij,j->i', A, x)", lambda x, A: torch.einsum("ij,j->i", A, x)),
    ("torch.zeros_like(x, dtype=torch.float64) + torch.pi", lambda x, A: torch.zeros_like(x) + torch.pi),
    ("x[None, :] @ A", lambda x, A: x[None, :] @ A),
    ("torch.special.expit(x) * torch.nn.functional.softplus(x, beta=2.0)",
     lambda x, A: torch.special.expit(x) * F.softplus(x, beta=2.0)),
]


@pytest.mark.parametrize("text, expected", IDIOMS, ids=[t for t, _ in IDIOMS])
def test_pytorch_idioms(text, expected):
    x = torch.tensor([0.5, -1.5, 2.0], dtype=torch.float64)
    A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 3.0, 0.25], [0.0, 0.25, 1.5]], dtype=torch.float64)
    assert torch.allclose(run(text), expected(x, A))


def test_a_long_sum_is_fine():
    assert run(" + ".join(["x"] * 1000)).tolist() == (1000 * torch.tensor([0.5, -1.5, 2.0])).tolist()


FUNCTION_MODULE = '''
import torch

class Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return 2 * x * g
'''


def test_function_apply_on_an_imported_autograd_function(tmp_path, monkeypatch):
    (tmp_path / "dc_square_fn.py").write_text(FUNCTION_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    case = make_case("square", "sum(x**2)", torch="Square.apply(x).sum()",
                     variables={"x": {"shape": [3]}}, imports={"Square": "dc_square_fn:Square"}, samples=4,
                     modes=["reverse", "backward"])
    report = check_case(case, CheckOptions(allow_imports=True))
    assert {r.status for r in report.results} == {"pass"}
    with pytest.raises(ExpressionError, match="only\\s+a torch.autograd.Function's `.apply`"):
        compile_torch("Square.forward(None, x)", NAMES, {"Square": "dc_square_fn:Square"})
    sys.modules.pop("dc_square_fn", None)


@pytest.mark.parametrize("expr", ["where(x == 1, 2*x, x**2 + 1)", "where(x != 1, x**2 + 1, 2*x)"])
def test_equality_in_where_in_the_math_key(expr):
    case = make_case("eq", expr, variables={"x": {"domain": [-2, 2]}}, points=[{"x": 0.5}, {"x": -1.5}],
                     samples=8, dtypes=["float64"])
    report = check_case(case)
    assert all(not r.failed for r in report.results), [(r.status, r.message) for r in report.results]


# --- refused, with the spelling to use ---------------------------------------------------------

REFUSED = [
    # (text, words in the message or hint)
    ("x.sum(dims=0)", "did you mean 'dim'"),
    ("x.sum(dims=0)", "x.sum(dim=None, keepdim=False, *, dtype=None)"),
    ("torch.sigmoid(x, x)", "takes at most 1 positional"),
    ("torch.clamp()", "is missing the argument 'input'"),
    ("F.softmax(x, dimm=0)", "did you mean 'dim'"),
    ("F.gelu(x, approximate='tanhh')", "did you mean 'tanh'"),
    ("F.mse_loss(x, x, reduction='avg')", "takes one of 'none', 'mean', 'sum'"),
    ("x.sigmoidd()", "did you mean 'sigmoid'"),
    ("x.logaddexp2x(x)", "not an allowed tensor method"),
    ("x.softplus()", "use F.softplus(x)"),
    ("x.expit()", "use torch.special.expit(x)"),
    ("F.exp(x)", "use torch.exp"),
    ("torch.nn.ReLU()(x)", "F.relu, not torch.nn.ReLU"),
    ("sigmoid(x)", "write torch.sigmoid"),
    ("torch.sigmoid(x, out=x)", "no keyword 'out'"),
    ("F.rrelu(x, training=True)", "may only be False"),
    ("F.scaled_dot_product_attention(A, A, A, dropout_p=0.5)", "may only be"),
    ("torch.sum(x, 'os')", "text 'os' is not allowed"),
    ("torch.einsum('i;j', x)", "may hold only letters"),
    ("x.sum", "must be called"),
    ("torch.sigmoid", "is a function: call it"),
]


@pytest.mark.parametrize("text, says", REFUSED, ids=[f"{t}|{s}" for t, s in REFUSED])
def test_refused_with_the_spelling_to_use(text, says):
    with pytest.raises(ExpressionError) as info:
        compile_torch(text, NAMES, {})
    assert says in str(info.value), str(info.value)


@pytest.mark.parametrize("text", ["torch.Tensor.detach(2.0)", "(2.0).exp()", "torch.Tensor.mT"])
def test_methods_need_a_tensor(text):
    with pytest.raises((TypeError, ExpressionError)):
        run(text)


def test_fields_of_returned_named_tuples_that_are_also_method_names():
    A = torch.tensor([[2.0, 0.5, 0.0], [0.5, 3.0, 0.25], [0.0, 0.25, 1.5]], dtype=torch.float64)
    sign, logabsdet = torch.linalg.slogdet(A)
    assert torch.equal(run("torch.linalg.slogdet(A).sign * torch.linalg.slogdet(A).logabsdet"), sign * logabsdet)
    with pytest.raises(TypeError):
        run("x.sign * 2")  # a tensor's .sign is a method, not a field


@pytest.mark.parametrize("text", ["x[torch.save]", "torch.sum(x, dtype=torch.load)", "torch.tensor(torch.save)",
                                  "x.T(1)", "torch.float64(1)", "torch.Tensor(3)", "torch.torch",
                                  "torch.max(x, dim=0).indices.storage()", "x.sign.__self__"])
def test_no_function_or_class_flows_as_a_value(text):
    with pytest.raises(ExpressionError):
        compile_torch(text, NAMES, {})
