"""The attack corpus (tests/data/attacks/*.yaml): one file per route from a case file to code,
files, code loading, module imports or global state. Every attack is run as a user would run
it, `diffcheck run -j 1` in an empty directory, and must be refused with its message and exit
code, with no side effect: the file it tries to create does not exist, a module it names is
not imported, and torch's global state is what it was."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from click.testing import CliRunner

from diffcheck.cli import main

ATTACKS = Path(__file__).parent / "data" / "attacks"


def _attacks():
    for path in sorted(ATTACKS.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for attack in data["attacks"]:
            yield pytest.param(data["route"], attack, id=f"{path.stem}:{attack['name']}")


def global_state() -> dict:
    """torch's process-wide settings a case could change."""
    return {
        "default_dtype": torch.get_default_dtype(),
        "grad": torch.is_grad_enabled(),
        "matmul_precision": torch.get_float32_matmul_precision(),
        "warn_always": torch.is_warn_always_enabled(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "threads": torch.get_num_threads(),
        "rng": hashlib.sha256(torch.random.get_rng_state().numpy().tobytes()).hexdigest(),
        "autocast": torch.is_autocast_enabled("cpu"),
        "modules": {name for name in sys.modules if name.startswith("pwned")},
    }


def case_text(attack: dict) -> str:
    lines = [f"name: attack.{attack['name']}", "variables: {x: {shape: [3]}}",
             f"expr: {json.dumps(attack.get('expr', 'sum(x)'))}", "samples: 2", "dtypes: [float64]"]
    if attack.get("torch") is not None:
        lines.append(f"torch: {json.dumps(attack['torch'])}")
    if attack.get("imports"):
        lines.append(f"imports: {json.dumps(attack['imports'])}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("route, attack", list(_attacks()))
def test_attack_is_refused_without_side_effect(route, attack, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name, text in (attack.get("module") or {}).items():
        (tmp_path / name).write_text(text)
    (tmp_path / "attack.yaml").write_text(case_text(attack), encoding="utf-8")
    before = global_state()
    listing = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(main, ["run", "attack.yaml", "-j", "1", "--no-cache"])
    output = " ".join(result.output.split())
    assert result.exit_code == attack["exit"], (route, result.output)
    assert " ".join(attack["says"].split()) in output, (route, result.output)
    assert "attack.yaml:" in output  # placed in the file
    if attack.get("creates"):
        assert not (tmp_path / attack["creates"]).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == listing
    assert global_state() == before


def test_every_route_has_a_file():
    routes = {yaml.safe_load(p.read_text())["route"] for p in ATTACKS.glob("*.yaml")}
    assert routes >= {"code execution", "file writes", "code loading", "module imports", "global state"}
