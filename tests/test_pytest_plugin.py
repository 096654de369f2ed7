"""The pytest plugin, through pytester: one item per case, readable failures, xfail."""

pytest_plugins = ["pytester"]

GOOD = """\
name: good.tanh
variables: {x: {}}
expr: tanh(x)
samples: 4
"""
BROKEN = """\
cases:
  - name: broken.silu
    variables: {x: {}}
    expr: x * sigmoid(x)
    torch: torch.Tensor.detach(torch.sigmoid(x)) * x
    samples: 4
  - name: broken.expected
    variables: {x: {}}
    expr: x * sigmoid(x)
    torch: torch.Tensor.detach(torch.sigmoid(x)) * x
    samples: 4
    xfail: detached on purpose
"""
BAD = """\
name: bad
variables: {x: {}}
expr: sigmoid(x) +
"""


def test_collects_cases_and_reports_failures(pytester):
    pytester.makefile(".yaml", good=GOOD, broken=BROKEN, bad=BAD)
    result = pytester.runpytest("--diffcheck", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=2, xfailed=1)
    result.stdout.fnmatch_lines(["*FAIL broken.silu*", "*worst point: x=*"])
    result.stdout.fnmatch_lines(["*bad.yaml:3:*invalid syntax*"])


def test_off_without_the_flag(pytester):
    pytester.makefile(".yaml", good=GOOD)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes()
