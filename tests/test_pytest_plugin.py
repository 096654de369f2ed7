"""The pytest plugin, through pytester: one item per case, readable failures, xfail."""

import pytest

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


def _cases_folder(pytester, **files):
    folder = pytester.mkdir("cases")
    for name, text in files.items():
        (folder / f"{name}.yaml").write_text(text)
    return folder


def test_collects_cases_and_reports_failures(pytester, monkeypatch):
    monkeypatch.setenv("COLUMNS", "300")  # the short summary lines, untrimmed
    _cases_folder(pytester, good=GOOD, broken=BROKEN, bad=BAD)
    result = pytester.runpytest("--diffcheck", "cases", "-p", "no:cacheprovider", "-rfE")
    result.assert_outcomes(passed=1, failed=2, xfailed=1)
    result.stdout.fnmatch_lines(["*FAIL broken.silu*", "*worst point  x=*"])
    result.stdout.fnmatch_lines(["*cases/bad.yaml:3:*invalid syntax*"])
    # the short summary: relative node ids, and the first failure's one-line message
    result.stdout.fnmatch_lines([
        "FAILED cases/bad.yaml::bad - cases/bad.yaml:3:7: in `expr` of case 'bad': invalid syntax*",
        "FAILED cases/broken.yaml::broken.silu - gradient · reverse · float64: fail (and * more): * points beyond*",
    ])


def test_off_without_the_flag(pytester):
    _cases_folder(pytester, good=GOOD)
    result = pytester.runpytest("cases", "-p", "no:cacheprovider")
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
    pytester.makeini("[pytest]\ndiffcheck_allow_imports = true\n")
    pytester.syspathinsert()
    result = pytester.runpytest("--diffcheck", "slow.yaml", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*time limit of 0.5 s*"])


# --- a user's repository -----------------------------------------------------------------

PYPROJECT = """\
[project]
name = "myproject"
version = "0.1"

[tool.pytest.ini_options]
addopts = "--diffcheck -p no:cacheprovider"
"""
CONFIG_YAML = """\
model:
  layers: 4
  width: 128
training: {lr: 0.001, epochs: 10}
"""
CI_YAML = """\
name: ci
on: [push]
jobs: {test: {runs-on: ubuntu-latest}}
"""
USER_TEST = """\
def test_plain():
    assert 1 + 1 == 2
"""


def _user_repository(pytester, ini_extra: str = ""):
    """A project as users have them: a pyproject, config YAML that is not a case, CI YAML, a
    tests folder, and case files in cases/ (one named by the convention in tests/)."""
    pytester.makefile(".toml", pyproject=PYPROJECT + ini_extra)
    pytester.makefile(".yaml", config=CONFIG_YAML)
    pytester.mkdir(".github")
    pytester.mkdir(".github/workflows")
    (pytester.path / ".github" / "workflows" / "ci.yml").write_text(CI_YAML)
    tests = pytester.mkdir("tests")
    (tests / "test_basic.py").write_text(USER_TEST)
    (tests / "fixtures.yaml").write_text(CONFIG_YAML)
    (tests / "sigmoid.diffcheck.yaml").write_text(GOOD.replace("good.tanh", "conv.tanh"))
    _cases_folder(pytester, good=GOOD, broken=BROKEN)


def test_a_users_repository_collects_only_case_files(pytester):
    """Plain `pytest`: config YAML and CI files are never collected; a file named by the
    convention is; cases/ is not, until named or listed in diffcheck_paths."""
    _user_repository(pytester)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines(["tests/sigmoid.diffcheck.yaml::conv.tanh", "tests/test_basic.py::test_plain"])
    assert "config" not in result.stdout.str() and "ci.yml" not in result.stdout.str()
    assert "fixtures" not in result.stdout.str() and "cases/" not in result.stdout.str()
    result = pytester.runpytest()
    result.assert_outcomes(passed=2)


def test_a_folder_named_on_the_command_line(pytester):
    _user_repository(pytester)
    result = pytester.runpytest("cases", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert ids == ["cases/broken.yaml::broken.silu", "cases/broken.yaml::broken.expected",
                   "cases/good.yaml::good.tanh"]
    result = pytester.runpytest("config.yaml", "--collect-only", "-q")  # a file named: taken as given
    result.stdout.fnmatch_lines(["config.yaml::invalid*"])


def test_diffcheck_paths_and_glob_ini_options(pytester):
    _user_repository(pytester, '\ndiffcheck_paths = ["cases"]\ndiffcheck_glob = ["*.case.yaml"]\n')
    (pytester.path / "tests" / "relu.case.yaml").write_text(GOOD.replace("good.tanh", "glob.tanh"))
    result = pytester.runpytest("--collect-only", "-q")
    ids = sorted(line for line in result.stdout.lines if "::" in line and ".py" not in line)
    assert ids == ["cases/broken.yaml::broken.expected", "cases/broken.yaml::broken.silu",
                   "cases/good.yaml::good.tanh", "tests/relu.case.yaml::glob.tanh"]


def test_node_ids_are_unique_and_relative(pytester):
    """Every invalid part of a file is its own item, named by its line and column."""
    _user_repository(pytester)
    bad = "cases:\n  - name: a\n    variables: {x: {}}\n  - name: b\n    expr: x\n    samples: -1\n"
    (pytester.path / "cases" / "bad.yaml").write_text(bad)
    result = pytester.runpytest("cases/bad.yaml", "--collect-only", "-q")
    ids = [line for line in result.stdout.lines if "::" in line]
    assert len(ids) == len(set(ids)) >= 2
    assert all(i.startswith("cases/bad.yaml::invalid@") for i in ids)


def test_report_and_json_options(pytester):
    _user_repository(pytester)
    result = pytester.runpytest("cases", "--diffcheck-report", "out", "--diffcheck-json", "out/results.json")
    result.assert_outcomes(passed=1, failed=1, xfailed=1)
    import json
    data = json.loads((pytester.path / "out" / "results.json").read_text())
    assert sorted({r["case"] for r in data["results"]}) == ["broken.expected", "broken.silu", "good.tanh"]
    index = (pytester.path / "out" / "index.md").read_text()
    assert "broken.silu" in index and "good.tanh" in index
    if _has_matplotlib():
        assert list((pytester.path / "out" / "plots").glob("*.png"))
    result = pytester.runpytest("cases", "--diffcheck-report", "bare", "--diffcheck-no-plots")
    result.assert_outcomes(passed=1, failed=1, xfailed=1)
    assert "good.tanh" in (pytester.path / "bare" / "index.md").read_text()
    assert not (pytester.path / "bare" / "plots").exists()


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


WARNS = """\
name: warns.sigmoid
variables: {x: {}}
expr: sigmoid(x)
torch: F.sigmoid(x)
modes: [forward]
samples: 4
"""


def test_torch_warnings_do_not_leak(pytester):
    _user_repository(pytester)
    (pytester.path / "cases" / "warns.yaml").write_text(WARNS)
    result = pytester.runpytest("cases/warns.yaml", "-W", "always")
    result.assert_outcomes(passed=1)
    assert "warnings summary" not in result.stdout.str() and "Warning" not in result.stdout.str()


@pytest.mark.slow
def test_under_xdist_the_same_results(pytester):
    pytest.importorskip("xdist")
    _user_repository(pytester)
    one = pytester.runpytest("cases", "--diffcheck-json", "one.json")
    two = pytester.runpytest("cases", "-n", "2", "--diffcheck-json", "two.json")
    one.assert_outcomes(passed=1, failed=1, xfailed=1)
    two.assert_outcomes(passed=1, failed=1, xfailed=1)
    import json

    def results(name):
        data = json.loads((pytester.path / name).read_text())
        return [{k: v for k, v in r.items() if k != "seconds"} for r in data["results"]]
    assert results("one.json") == results("two.json")
