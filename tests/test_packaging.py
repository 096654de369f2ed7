"""The package as a pip user gets it: the wheel built from this tree carries the example
cases, the pytest plugin, the console script, the licence and the typing marker."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from diffcheck.cli import main
from diffcheck.environment import example_files

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
                   check=True, capture_output=True)
    (built,) = out.glob("diffcheck-*.whl")
    return zipfile.ZipFile(built)


def _metadata(wheel: zipfile.ZipFile) -> email.message.Message:
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    return email.message_from_bytes(wheel.read(name))


@pytest.mark.slow  # builds a wheel: about 10 s
def test_the_wheel_carries_every_example_case(wheel):
    shipped = {n.removeprefix("diffcheck/cases/") for n in wheel.namelist() if n.startswith("diffcheck/cases/")}
    in_repo = {p.relative_to(ROOT / "cases").as_posix() for p in (ROOT / "cases").rglob("*.y*ml")}
    assert in_repo and shipped == in_repo


@pytest.mark.slow  # builds a wheel: about 10 s
def test_the_wheel_registers_the_plugin_and_the_script(wheel):
    name = next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))
    entry_points = wheel.read(name).decode()
    assert "[pytest11]\ndiffcheck = diffcheck.pytest_plugin" in entry_points
    assert "[console_scripts]\ndiffcheck = diffcheck.cli:entry" in entry_points
    assert "diffcheck/pytest_plugin.py" in wheel.namelist()


@pytest.mark.slow  # builds a wheel: about 10 s
def test_the_wheel_has_licence_typing_marker_and_metadata(wheel):
    names = wheel.namelist()
    assert "diffcheck/py.typed" in names
    assert any(n.endswith("licenses/LICENSE") for n in names)
    meta = _metadata(wheel)
    assert meta["License-Expression"] == "MIT"
    assert "Typing :: Typed" in meta.get_all("Classifier")
    requires = meta.get_all("Requires-Dist")
    assert any(r.startswith("hypothesis") for r in requires), "--search needs Hypothesis"
    assert any(r.startswith("torch") for r in requires)


@pytest.mark.slow  # builds a wheel: about 10 s
def test_the_wheel_ships_no_tests_or_tools(wheel):
    assert not [n for n in wheel.namelist() if n.startswith(("tests/", "tools/", "bench/"))]


def test_examples_are_found_and_listed():
    assert {p.name for p in example_files()} >= {"kinks.yaml", "softmax.yaml"}


def test_init_writes_the_examples_and_refuses_to_overwrite(tmp_path):
    from click.testing import CliRunner

    runner = CliRunner()
    first = runner.invoke(main, ["init", str(tmp_path / "mine")])
    assert first.exit_code == 0, first.output
    assert sorted(p.relative_to(tmp_path / "mine") for p in (tmp_path / "mine").rglob("*.y*ml")) == example_files()
    again = runner.invoke(main, ["init", str(tmp_path / "mine")])
    assert again.exit_code == 1 and "pass --force" in again.output
    assert runner.invoke(main, ["init", "--force", str(tmp_path / "mine")]).exit_code == 0


def test_version_names_every_version_a_bug_report_needs():
    from click.testing import CliRunner

    out = CliRunner().invoke(main, ["--version"])
    assert out.exit_code == 0
    lines = out.output.splitlines()
    assert lines[0].startswith("diffcheck ")
    for name in ("torch", "sympy", "mpmath", "numpy", "python", "symengine", "matplotlib"):
        assert any(line.strip().startswith(name + " ") for line in lines[1:]), name


def test_run_without_paths_is_a_usage_error():
    from click.testing import CliRunner

    out = CliRunner().invoke(main, ["run"])
    assert out.exit_code == 2 and "--examples" in out.output


def test_a_missing_extra_is_one_line_naming_it(monkeypatch):
    from diffcheck import environment
    from diffcheck.errors import MissingDependency

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now raises ImportError
    with pytest.raises(MissingDependency) as err:
        environment.optional("matplotlib")
    assert "pip install 'diffcheck[plots]'" in str(err.value) and "\n" not in str(err.value)


def test_torch_warnings_stay_off_the_console_and_the_users_do_not(recwarn):
    import warnings

    from diffcheck.environment import quiet_torch_warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_torch_warnings()
        warnings.warn_explicit("`torch.jit.script` is deprecated", DeprecationWarning, "x.py", 1,
                               module="torch._decomp.decompositions_for_jvp")
        warnings.warn_explicit("a kernel note", UserWarning, "y.py", 1, module="torch.nn.functional")
        warnings.warn_explicit("There is a performance drop because we have not yet implemented the batching "
                               "rule for aten::special_log_ndtr. (Triggered internally at BatchedFallback.cpp:82.)",
                               UserWarning, "diffcheck/language/__init__.py", 573, module="diffcheck.language")
        warnings.warn_explicit("mine", UserWarning, "z.py", 1, module="mypkg.ops")
    assert [str(w.message) for w in seen] == ["mine"]


@pytest.mark.slow  # installs the wheel into a folder
def test_an_installed_wheel_finds_and_runs_its_examples(wheel, tmp_path):
    """Installed from the wheel (not editable), run from another folder: `diffcheck.cases` is a
    namespace package there, and `diffcheck list --examples` must find its files."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                    wheel.filename], check=True, capture_output=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    script = ("import sys; sys.path.insert(0, sys.argv[1]); from diffcheck.cli import main; "
              "main(['list', '--examples'], prog_name='diffcheck')")
    proc = subprocess.run([sys.executable, "-c", script, str(target)], cwd=elsewhere, capture_output=True,
                          text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr
    assert str(target / "diffcheck" / "cases") in proc.stdout and "softmax.yaml" in proc.stdout
