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


SLOW_HELPER = """\
import time, torch

def slow(x):
    time.sleep(3)
    return torch.sigmoid(x)
"""
SLOW = """\
defaults:
  variables: {x: {}}
  expr: sigmoid(x)
  torch: slow(x)
  imports: {slow: "slow_helper:slow"}
  samples: 2
  timeout: 0.5
cases:
  - name: slow.plain
  - name: slow.expected
    xfail: a failure is expected, not a stop
"""


def test_each_case_runs_under_its_time_limit(pytester):
    """Under pytest too a case has its limits; a stopped case fails, xfail or not."""
    pytester.makepyfile(slow_helper=SLOW_HELPER)
    pytester.makefile(".yaml", slow=SLOW)
    pytester.syspathinsert()
    result = pytester.runpytest("--diffcheck", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*time limit of 0.5 s*"])
