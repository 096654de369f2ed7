"""The real command line over real case files: exit codes, bad input next to good, reports."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from diffcheck import pipeline as check_module
from diffcheck.cli import main

VALID = """\
name: good.sigmoid
variables: {x: {}}
expr: sigmoid(x)
samples: 4
"""

INVALID = """\
name: bad.typo
variabels: {x: {}}
expr: sigmoid(x)
"""

BROKEN = """\
name: broken.silu
variables: {x: {}}
expr: x * sigmoid(x)
torch: torch.Tensor.detach(torch.sigmoid(x)) * x
samples: 4
"""


def write(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    return tmp_path


def invoke(*args: str):
    return CliRunner().invoke(main, ["run", *args])


def test_invalid_file_next_to_valid_one(tmp_path):
    (tmp_path / "cases").mkdir()
    folder = write(tmp_path / "cases",
                   {"a_good.yaml": VALID, "b_bad.yaml": INVALID})
    out_json, out_dir = tmp_path / "r.json", tmp_path / "rep"
    result = invoke(str(folder), "--json", str(out_json), "--report", str(out_dir))
    assert result.exit_code == 2
    assert "b_bad.yaml:2:1" in result.output
    assert "did you mean 'variables'" in result.output
    assert "a_good.yaml  1 case ." in result.output  # its verdict line
    data = json.loads(out_json.read_text())
    assert {r["case"] for r in data["results"]} == {"good.sigmoid"}
    assert all(r["status"] == "pass" for r in data["results"])
    assert any(e["line"] == 2 and e["file"].endswith("b_bad.yaml") for e in data["errors"])
    report = (out_dir / "index.md").read_text()
    assert "good.sigmoid" in report and "b_bad.yaml" in report


def test_failing_case_exits_1_and_shows_the_worst_point(tmp_path):
    result = invoke(str(write(tmp_path, {"broken.yaml": BROKEN})))
    assert result.exit_code == 1
    assert "broken.silu" in result.output
    assert "x/(1 + exp(-x))" in result.output or "exp(-x)" in result.output  # the exact formula
    assert "worst point" in result.output


def test_no_cases_exits_5(tmp_path):
    (tmp_path / "empty").mkdir()
    assert invoke(str(tmp_path / "empty")).exit_code == 5


@pytest.mark.parametrize("jobs", [["-j", "1"], ["-j", "2"], ["--in-process"]])
def test_internal_error_exits_3_and_keeps_other_cases(tmp_path, monkeypatch, jobs):
    """In one process (--in-process: check_case) and in workers (-j 1, -j 2: check_part,
    inherited by the forked workers), a bug in one case is an internal error; the other case
    is reported."""
    folder = write(tmp_path, {"a.yaml": VALID, "b.yaml": VALID.replace("good.sigmoid", "good.other")})
    real_case, real_part = check_module.check_case, check_module.check_part

    def flaky_case(case, options=None):
        if case.name == "good.other":
            raise RuntimeError("a bug in diffcheck")
        return real_case(case, options)

    def flaky_part(case, part, options, compiled=None):
        if case.name == "good.other" and part == "float32":
            raise RuntimeError("a bug in diffcheck")
        return real_part(case, part, options, compiled)

    monkeypatch.setattr("diffcheck.runner.execute.check_case", flaky_case)
    monkeypatch.setattr("diffcheck.runner.execute.check_part", flaky_part)
    out_json = tmp_path / "r.json"
    result = invoke(str(folder), "--json", str(out_json), *jobs)
    assert result.exit_code == 3
    report = json.loads(out_json.read_text())
    assert {r["case"] for r in report["results"]} == {"good.sigmoid"}
    assert "a bug in diffcheck" in report["internal_errors"][0]


def test_markdown_report_is_deterministic(tmp_path):
    folder = write(tmp_path, {"a.yaml": VALID, "b.yaml": BROKEN})
    texts = []
    for i in range(2):
        invoke(str(folder), "--report", str(tmp_path / f"r{i}"))
        lines = (tmp_path / f"r{i}" / "index.md").read_text().splitlines()
        texts.append([ln for ln in lines if not ln.startswith("Generated:")])
    assert texts[0] == texts[1]


def test_seed_changes_points_and_is_reproducible(tmp_path):
    folder = write(tmp_path, {"a.yaml": VALID})
    def worst(seed):
        out = tmp_path / f"s{seed}.json"
        invoke(str(folder), "--seed", str(seed), "--json", str(out))
        return [r["worst_point"]["point"] for r in json.loads(out.read_text())["results"]]
    assert worst(1) == worst(1)
    assert worst(1) != worst(2)


def test_keyword_selects_cases(tmp_path):
    folder = write(tmp_path, {"a.yaml": VALID, "b.yaml": BROKEN})
    result = invoke(str(folder), "-k", "good")
    assert result.exit_code == 0
    assert "broken.silu" not in result.output


def test_search_pins_a_narrow_bug(tmp_path):
    folder = write(tmp_path, {"n.yaml": """\
        name: narrow
        variables: {x: {}}
        expr: sigmoid(x)
        torch: bug(x)
        imports: {bug: "diffcheck.examples:sigmoid_narrow_bug"}
        modes: [reverse]
        dtypes: [float64]
        """})
    plain = invoke(str(folder))
    assert plain.exit_code == 0  # 32 random samples miss the interval (2.5, 2.51)
    outs = [invoke(str(folder), "--search") for _ in range(2)]
    assert all(o.exit_code == 1 for o in outs)
    assert "points: [{x: 2.5078125}]" in outs[0].output
    assert outs[0].output.count("points: [") == outs[1].output.count("points: [")


@pytest.mark.slow
def test_the_shipped_suite_passes():
    root = Path(__file__).resolve().parents[1]
    result = invoke(str(root / "cases"), "-q")
    assert result.exit_code == 0, result.output[-3000:]


@pytest.mark.parametrize("files, args, code", [
    ({"a.yaml": VALID}, [], 0),
    ({"a.yaml": BROKEN}, [], 1),
    ({"a.yaml": VALID, "b.yaml": INVALID}, [], 2),
    ({"a.yaml": VALID}, ["--no-such-option"], 2),
])
def test_the_script_exits_fast_with_the_run_s_exit_code(tmp_path, files, args, code):
    """``python -m diffcheck`` leaves through ``os._exit``: the code and every output survive."""
    folder = write(tmp_path, files)
    out = tmp_path / "out.json"
    proc = subprocess.run([sys.executable, "-m", "diffcheck", "run", str(folder), "--no-cache", "--json", str(out),
                           *args], capture_output=True, text=True, check=False)
    assert proc.returncode == code, proc.stdout + proc.stderr
    if "--no-such-option" in args:
        assert "No such option" in proc.stderr
        return
    assert json.loads(out.read_text())["exit_code"] == code
    assert "passed" in proc.stdout.splitlines()[-1]  # the summary line was flushed
