"""The Python API, used the way a user's own test file uses it."""

import pytest
import torch

import diffcheck

pytest_plugins = ["pytester"]


def my_softplus(x):
    return torch.where(x > 20, x, torch.log1p(torch.exp(x)))


class SquareWrongBackward(torch.autograd.Function):
    """x², with a backward that is 1% off: a bug a custom Function can have."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 2.02 * x


def test_a_correct_function_passes():
    report = diffcheck.check_function(my_softplus, "log(1 + exp(x))", {"x": {"domain": [-15, 15]}})
    assert report.ok
    assert not report.failures
    assert {(r.check, r.dtype) for r in report.results} >= {("value", "float64"), ("gradient", "float32")}
    diffcheck.assert_function(my_softplus, "log(1 + exp(x))", {"x": {"domain": [-15, 15]}})


def test_a_buggy_custom_function_fails_with_the_failure_block():
    report = diffcheck.check_function(SquareWrongBackward.apply, "x**2", "x", modes=["reverse"],
                                      dtypes=["float64"])
    assert not report.ok
    assert report.case.name == "SquareWrongBackward"
    assert [(r.check, r.mode, r.status) for r in report.failures] == [("gradient", "reverse", "fail")]
    with pytest.raises(diffcheck.CheckFailed) as info:
        report.raise_for_failures()
    message = str(info.value)
    assert "FAIL SquareWrongBackward" in message and "2*x" in message
    assert isinstance(info.value, AssertionError) and info.value.report is report


def test_variables_by_keyword_and_constants():
    def weighted(w, x, y):  # parameters named after the variables: passed by keyword
        return ((w * x - y) ** 2).sum()

    report = diffcheck.check_function(
        weighted, "sum((w*x - y)**2)", {"x": {"shape": [3]}, "w": {"shape": [3], "domain": [-1, 1]}},
        constants={"y": torch.tensor([1.0, 2.0, 3.0])}, samples=8, seed=3)
    assert report.ok, report.render()
    assert report.case.seed == 3 and report.results[0].points == 8


def test_positional_by_variable_order_and_explicit_points():
    report = diffcheck.check_function(lambda a, b: a * torch.sin(b), "x * sin(y)", "x, y",
                                      points=[{"x": 0.5, "y": 2.0}], samples=0, check="gradient")
    assert report.ok and report.results[0].points == 1


def test_bad_arguments_are_case_errors_at_the_call():
    with pytest.raises(diffcheck.CaseFileError) as info:
        diffcheck.check_function(my_softplus, "log(1 + exp(x)) + nosuch(x)", "x")
    assert "unknown function 'nosuch'" in str(info.value)
    assert str(info.value).startswith("tests/test_api.py:") or "test_api.py:" in str(info.value)
    with pytest.raises(diffcheck.CaseFileError, match="did you mean 'dtypes'"):
        diffcheck.check_function(my_softplus, "log(1 + exp(x))", "x", dtype=["float32"])
    with pytest.raises(diffcheck.CaseFileError, match="must be one of"):
        diffcheck.check_function(my_softplus, "log(1 + exp(x))", "x", modes=["sideways"])
    with pytest.raises(TypeError):
        diffcheck.check_function(my_softplus, "x", "x", torch="torch.sin(x)")


def test_the_expression_is_never_evaluated():
    with pytest.raises(diffcheck.CaseFileError):
        diffcheck.check_function(my_softplus, "__import__('os').system('true')", "x")


def test_the_public_names():
    for name in ("check_function", "assert_function", "check_case", "run", "RunOptions", "load_text",
                 "load_paths", "Result", "CaseReport", "RunReport", "DiffcheckError", "CaseFileError",
                 "CheckFailed"):
        assert name in diffcheck.__all__ and hasattr(diffcheck, name)
    assert issubclass(diffcheck.CheckFailed, diffcheck.DiffcheckError)


USER_TEST = '''
import torch
import diffcheck


class Cube(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x ** 3

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        return grad * 3 * x * x.abs()   # wrong: 3x|x| instead of 3x²


def gelu_tanh(x):
    return torch.nn.functional.gelu(x, approximate="tanh")


def test_cube():
    diffcheck.assert_function(Cube.apply, "x**3", "x", modes=["reverse"], dtypes=["float64"])


def test_gelu():
    diffcheck.assert_function(gelu_tanh, "0.5*x*(1 + tanh(sqrt(2/pi)*(x + 0.044715*x**3)))",
                              {"x": {"domain": [-6, 6]}})
'''


def test_in_a_users_test_file(pytester):
    """A plain test module of a user's repository: one failure, shown as the console shows
    it, one pass."""
    pytester.makepyfile(test_mine=USER_TEST)
    result = pytester.runpytest("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*CheckFailed*Cube failed*", "*FAIL Cube*", "*FAIL gradient · reverse · float64*",
                                 "*worst point  x=*"])
