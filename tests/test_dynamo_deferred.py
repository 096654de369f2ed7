"""Forward mode without importing ``torch._dynamo`` (autograd.dynamo_deferred).

Each test runs in a fresh interpreter: whether ``torch._dynamo`` was imported is a fact about
the whole process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow  # each test starts fresh interpreters that import torch

CHECK = textwrap.dedent("""
    import json, sys
    import torch
    from torch.func import jacfwd, vmap
    import contextlib
    from diffcheck.autograd import dynamo_deferred, dynamo_references

    changed = len(dynamo_references()) if sys.argv[1] == "defer" else 0
    x = torch.linspace(-2, 2, 12, dtype=torch.float64).reshape(4, 3)
    with dynamo_deferred() if sys.argv[1] == "defer" else contextlib.nullcontext():
        jac = vmap(jacfwd(lambda v: torch.sin(v) * 3 + 2 - v / 7))(x)
    expected = torch.diag_embed(3 * torch.cos(x) - 1 / 7)
    print(json.dumps({"changed": changed, "dynamo": "torch._dynamo" in sys.modules,
                      "equal": bool(torch.equal(jac, expected)),
                      "close": bool(torch.allclose(jac, expected, rtol=0, atol=1e-15))}))
""")


#: the torch whose private layout the shim is written against (the release the suite pins)
PINNED_TORCH = "2.13."


def _shim_applies() -> bool:
    """Whether this torch has the layout the shim expects; where it does not, the shim does
    nothing, by design. On the pinned torch it must apply: a change of torch's internals there
    fails loudly (test_the_shim_matches_the_pinned_torch) instead of only making runs slow."""
    found = _run("import json, torch\nfrom diffcheck.autograd import dynamo_references\n"
                 "print(json.dumps({'n': len(dynamo_references())}))")
    return found["n"] > 0


def test_the_shim_matches_the_pinned_torch():
    import torch

    if not torch.__version__.startswith(PINNED_TORCH):
        pytest.skip(f"torch {torch.__version__} is not the pinned {PINNED_TORCH}x; the shim may do nothing here")
    assert _shim_applies(), ("torch's private layout changed: autograd.dynamo_references finds no "
                             "torch._compile._disable_dynamo wrappers (a closure over `fn` that caches its "
                             "disable wrapper as fn.__dynamo_disable), so forward mode imports torch._dynamo again")


def _run(script: str, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_forward_mode_of_a_constant_product_imports_dynamo_without_it():
    """The reason for the change: torch 2.13 imports torch._dynamo (about 1 s) for x * 3."""
    plain = _run(CHECK, "plain")
    if not plain["dynamo"]:
        pytest.skip("this torch does not import torch._dynamo for forward mode of x * 3")
    if not _shim_applies():
        pytest.skip("this torch's internals are not the shim's: it does nothing here, by design")
    deferred = _run(CHECK, "defer")
    assert deferred["changed"] > 0
    assert deferred["dynamo"] is False
    assert deferred["close"] and plain["close"]


def test_same_numbers_with_and_without():
    """Same kernels: the Jacobians are bitwise equal."""
    script = CHECK.replace('"equal": bool(torch.equal(jac, expected))', '"jac": jac.flatten().tolist()')
    assert _run(script, "plain")["jac"] == _run(script, "defer")["jac"]


def test_torch_gets_its_own_wrapper_once_dynamo_is_imported():
    """Once something imports torch._dynamo inside the block, a reference's next call builds
    torch's ``torch._dynamo.disable`` wrapper and keeps it, as torch would have; after the
    block, no stand-in is left: the process is as it was."""
    script = textwrap.dedent("""
        import json, sys
        import torch
        from torch.func import jacfwd, vmap
        from diffcheck.autograd import dynamo_deferred, dynamo_references
        import torch._refs
        ref = torch._refs.mul
        while ref.__code__.co_name != "inner":
            ref = ref.__wrapped__
        fn = dict(zip(ref.__code__.co_freevars, (c.cell_contents for c in ref.__closure__)))["fn"]
        f = lambda v: v * 3
        x = torch.ones(2, 3, dtype=torch.float64)
        seen = {}
        with dynamo_deferred():
            vmap(jacfwd(f))(x)
            seen["inside"] = getattr(fn.__dynamo_disable, "diffcheck_deferred", False)
            seen["dynamo_inside"] = "torch._dynamo" in sys.modules
        seen["left_after"] = hasattr(fn, "__dynamo_disable")
        with dynamo_deferred():
            vmap(jacfwd(f))(x)
            import torch._dynamo
            out = vmap(jacfwd(f))(x)
            seen["torch_s_own"] = not getattr(fn.__dynamo_disable, "diffcheck_deferred", False)
        seen["kept_after"] = hasattr(fn, "__dynamo_disable")
        seen["ok"] = bool((out.diagonal(dim1=1, dim2=2) == 3).all())
        print(json.dumps(seen))
    """)
    try:
        got = _run(script)
    except AssertionError as err:  # another torch: the references are laid out differently
        if "AttributeError" in str(err):
            pytest.skip("torch._refs.mul is not wrapped by torch._compile._disable_dynamo here")
        raise
    assert got == {"inside": True, "dynamo_inside": False, "left_after": False, "torch_s_own": True,
                   "kept_after": True, "ok": True}


def test_a_run_of_the_suite_kind_of_case_does_not_import_dynamo(tmp_path):
    """A whole check of a forward-mode case with constants, through the runner."""
    case = tmp_path / "c.yaml"
    case.write_text(textwrap.dedent("""
        cases:
          - name: affine
            variables: {x: {shape: [3]}}
            expr: 3*x + 2
            modes: [forward, reverse]
    """))
    script = textwrap.dedent(f"""
        import json, sys
        from diffcheck import runner
        report = runner.run([{str(case)!r}], runner.RunOptions(jobs=1, cache=False))
        print(json.dumps({{"dynamo": "torch._dynamo" in sys.modules,
                          "statuses": sorted({{r.status for r in report.results}}), "n": len(report.results)}}))
    """)
    got = _run(script)
    assert got["n"] > 0 and got["statuses"] == ["pass"]
    if _shim_applies():
        assert got["dynamo"] is False


def test_the_off_switch_turns_the_shim_off(monkeypatch):
    from diffcheck.autograd import dynamo_shim

    monkeypatch.setattr(dynamo_shim, "_REFERENCES", None)
    monkeypatch.setenv(dynamo_shim.OFF_SWITCH, "1")
    assert dynamo_shim.dynamo_references() == []
    with dynamo_shim.dynamo_deferred():  # a no-op block
        pass
