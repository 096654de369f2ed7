"""`imports:` runs code: refused unless the project opts in (issue 10 item 2), found in the
directory diffcheck runs from, and a failed import points at the `imports:` line (issue 15)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffcheck import runner
from diffcheck.cli import main

CASE = """\
name: imported
variables: {x: {}}
expr: sigmoid(x)
torch: sig(x)
imports: {sig: "myops_dc_test.functions:sig"}
samples: 4
dtypes: [float64]
"""
MODULE = "import torch\n\ndef sig(x):\n    return torch.sigmoid(x)\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with its own package and a case that imports it; the cwd is the folder."""
    (tmp_path / "myops_dc_test").mkdir()
    (tmp_path / "myops_dc_test" / "__init__.py").write_text("")
    (tmp_path / "myops_dc_test" / "functions.py").write_text(MODULE)
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "c.yaml").write_text(CASE)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("myops_dc_test")]:
        del sys.modules[name]


def _run(*args: str):
    return CliRunner().invoke(main, ["run", "cases", "-j", "1", "--no-cache", *args])


def test_refused_without_opt_in_at_the_imports_line(project: Path) -> None:
    result = _run()
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "c.yaml:5:" in text
    assert "--allow-imports" in text and "allow-imports = true" in text
    assert "myops_dc_test" not in sys.modules  # nothing was imported


def test_the_flag_opts_in_and_the_module_is_found_in_the_cwd(project: Path) -> None:
    result = _run("--allow-imports")
    assert result.exit_code == 0, result.output


def test_pyproject_opts_in(project: Path) -> None:
    (project / "pyproject.toml").write_text("[tool.diffcheck]\nallow-imports = true\n")
    assert _run().exit_code == 0


@pytest.mark.parametrize("value", ["false", '"true"', "1"])
def test_only_the_boolean_true_opts_in(project: Path, value: str) -> None:
    (project / "pyproject.toml").write_text(f"[tool.diffcheck]\nallow-imports = {value}\n")
    assert _run().exit_code == 2


def test_a_failed_import_points_at_the_imports_line(project: Path) -> None:
    (project / "cases" / "c.yaml").write_text(CASE.replace("myops_dc_test.functions", "myops_dc_missing.functions"))
    report = runner.run(["cases"], runner.RunOptions(jobs=1, cache=False, allow_imports=True))
    assert report.exit_code == 2
    (error,) = report.errors
    assert error.location.line == 5 and "imports.sig" in error.message
    assert "cannot import 'myops_dc_missing.functions'" in error.message and "PYTHONPATH" in error.hint


def test_diffcheck_examples_need_no_opt_in(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "k.yaml").write_text(CASE.replace("myops_dc_test.functions:sig",
                                                  "diffcheck.examples:sigmoid_narrow_bug")
                                     .replace("samples: 4", "samples: 4\nxfail: a narrow bug"))
    report = runner.run([str(tmp_path / "k.yaml")], runner.RunOptions(jobs=1, cache=False))
    assert not report.errors
