"""A Hypothesis fuzzer of whole case files (issue 10 item 8).

Random keys and values, expression trees for both keys (library calls, operators, comparisons,
indexing, and for `torch:` names and attribute chains of torch, tensor methods, keywords and
literals), and raw bytes. Each input is loaded and run in-process (``runner.run_case``) and
through the CLI (``diffcheck run -j 1`` in an empty temporary directory). Asserted: no
internal error (exit 3, or an internal-error outcome), no hang past the case's limit, and no
file created outside the run's output.

Budget: a few seconds by default. ``DIFFCHECK_FUZZ_EXAMPLES=N`` sets the number of inputs per
test (the longer documented budget, e.g. 2000); the figures of a run are printed with ``-s``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffcheck import runner
from diffcheck.cli import main
from diffcheck.language.library import LIBRARY
from diffcheck.language.torch_names import FUNCTIONS, METHODS
from diffcheck.loader import load_text
from diffcheck.pipeline import CheckOptions

EXAMPLES = int(os.environ.get("DIFFCHECK_FUZZ_EXAMPLES", "0"))
LIMIT = 2.0          # seconds each fuzzed case may run (its own timeout is capped to this)
GRACE = 20.0         # a case that takes longer than LIMIT + GRACE has hung past its limit
FIGURES = {"inputs": 0, "internal errors": 0, "hangs": 0, "valid cases": 0}


def budget(short: int):
    return settings(max_examples=EXAMPLES or short, deadline=None, derandomize=not EXAMPLES,
                    suppress_health_check=list(HealthCheck), database=None)


NAMES = ["x", "y", "k", "z", "A", "pi", "E", "torch", "F", "_x", "__import__", "eval", "os"]
NUMBERS = ["0", "1", "2", "0.5", "-3", "1e-300", "1e300", "1e400", "10**330", "2**0.5", "0.0"]
TORCH_ATTRS = sorted({n.split(".")[-1] for n in FUNCTIONS}) + ["save", "load", "ops", "jit", "Tensor",
                                                                "nn", "special", "linalg", "mro",
                                                                "__class__", "storage", "T", "mT",
                                                                "set_default_dtype", "from_file"]
METHOD_NAMES = sorted(METHODS) + ["grad_fn", "storage", "untyped_storage", "data", "apply_", "type",
                                  "__class__", "T", "mT", "shape"]
KEYWORDS = ["dim", "keepdim", "reduction", "approximate", "min", "max", "out", "p", "alpha", "_x"]
STRINGS = ["'mean'", "'sum'", "'tanh'", "'os'", "'x.pt'", "''"]


def _leaf(torch_key: bool):
    names = st.sampled_from(NAMES)
    if torch_key:
        chains = st.lists(st.sampled_from(TORCH_ATTRS), min_size=1, max_size=3).map(
            lambda parts: ".".join(["torch"] + parts))
        return st.one_of(names, st.sampled_from(NUMBERS), chains, st.sampled_from(STRINGS))
    return st.one_of(names, st.sampled_from(NUMBERS))


def expressions(torch_key: bool):
    funcs = st.sampled_from(sorted(LIBRARY) + ["where", "foo"])

    def extend(inner):
        binop = st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "@", "%", "<", "==", "!="]),
                          inner).map(lambda t: f"({t[0]} {t[1]} {t[2]})")
        kw = st.tuples(st.sampled_from(KEYWORDS), st.one_of(inner, st.sampled_from(STRINGS))).map(
            lambda t: f"{t[0]}={t[1]}")
        call = st.tuples(funcs, st.lists(inner, max_size=3), st.lists(kw, max_size=2)).map(
            lambda t: f"{t[0]}({', '.join(t[1] + t[2])})")
        index = st.tuples(inner, st.sampled_from(["0", "-1", ":", "1:0", "::-1", "None", "..., 0", "5"])).map(
            lambda t: f"{t[0]}[{t[1]}]")
        parts = [binop, call, index, inner.map(lambda e: f"-{e}")]
        if torch_key:
            fcall = st.tuples(st.lists(st.sampled_from(TORCH_ATTRS), min_size=1, max_size=2),
                              st.lists(inner, max_size=3), st.lists(kw, max_size=2)).map(
                lambda t: f"torch.{'.'.join(t[0])}({', '.join(t[1] + t[2])})")
            method = st.tuples(inner, st.sampled_from(METHOD_NAMES), st.lists(inner, max_size=2)).map(
                lambda t: f"({t[0]}).{t[1]}({', '.join(t[2])})")
            attr = st.tuples(inner, st.sampled_from(METHOD_NAMES)).map(lambda t: f"({t[0]}).{t[1]}")
            parts += [fcall, method, attr]
        return st.one_of(*parts)

    return st.recursive(_leaf(torch_key), extend, max_leaves=12)


def _number():
    return st.one_of(st.integers(-10 ** 400, 10 ** 400), st.floats(allow_nan=True, allow_infinity=True),
                     st.sampled_from([0, 1, -1, 2, 0.5, 1e308, -1e308, 10 ** 330]))


def _data(depth: int = 2):
    scalar = st.one_of(_number(), st.text(max_size=8), st.booleans(), st.none())
    return st.recursive(scalar, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                        max_leaves=6)


def _shape():
    return st.one_of(st.just([]), st.lists(st.integers(0, 4), min_size=1, max_size=3),
                     st.sampled_from([[70] * 0 + [1] * 70, [100000, 100000], [-1], "3"]))


def _variable():
    return st.fixed_dictionaries({}, optional={
        "shape": _shape(),
        "domain": st.one_of(st.lists(_number(), min_size=2, max_size=2), _data()),
    })


def cases():
    keys = {
        "variables": st.one_of(st.dictionaries(st.sampled_from(["x", "y", "A", "_x", "torch", "1x"]),
                                               st.one_of(_variable(), st.none()), min_size=1, max_size=2),
                               _data()),
        "expr": st.one_of(expressions(False), _number()),
        "torch": expressions(True),
        "constants": st.dictionaries(st.sampled_from(["k", "y", "c"]),
                                     st.one_of(_number(), st.lists(_number(), max_size=3)), max_size=2),
        "let": st.dictionaries(st.sampled_from(["z", "w"]), expressions(False), max_size=2),
        "imports": st.dictionaries(st.sampled_from(["f", "g"]),
                                   st.sampled_from(["os:system", "diffcheck.examples:relu_two_at_zero",
                                                    "math:sqrt", "nope:x", "torch:sigmoid"]), max_size=1),
        "check": st.lists(st.one_of(st.sampled_from(["gradient", "jacobian", "hessian", "intermediates"]),
                                    st.fixed_dictionaries({"derivative": st.integers(-1, 4)})), max_size=2),
        "modes": st.lists(st.sampled_from(["reverse", "backward", "forward", "sideways"]), max_size=3),
        "dtypes": st.lists(st.sampled_from(["float64", "float32", "float16", "bfloat16", "int8"]), max_size=2),
        "samples": st.one_of(st.integers(-1, 3), st.just("all"), st.just(10 ** 12)),
        "points": st.lists(st.dictionaries(st.sampled_from(["x", "y"]), _number(), max_size=2), max_size=2),
        "seed": st.one_of(st.integers(-1, 2 ** 70), _data()),
        "timeout": st.one_of(_number(), st.just(1e12)),
        "tolerance": _data(),
        "expect": st.one_of(_data(), st.fixed_dictionaries({}, optional={
            "derivative": expressions(False), "differentiable": st.booleans()})),
        "xfail": st.one_of(st.text(max_size=10), _data()),
        "description": st.text(max_size=20),
        "nonsense": _data(),
    }
    return st.fixed_dictionaries({"name": st.sampled_from(["fz", "f.z-1", "bad name", ""]),
                                  "expr": keys.pop("expr")},
                                 optional={**keys})


def _dump(case: dict) -> str:
    try:
        return yaml.safe_dump(case, allow_unicode=True, sort_keys=False)
    except (OverflowError, ValueError):
        return json.dumps(case, default=str)


def _run_in_process(text: str) -> None:
    FIGURES["inputs"] += 1
    loaded, _errors = load_text(text, "fuzz.yaml")  # never raises
    for case in loaded:
        FIGURES["valid cases"] += 1
        case = dataclasses.replace(case, timeout=min(case.timeout, LIMIT))
        started = time.monotonic()
        outcome = runner.run_case(case, CheckOptions())
        internal = outcome.internal
        elapsed = time.monotonic() - started
        if internal is not None:
            FIGURES["internal errors"] += 1
        if elapsed > LIMIT + GRACE:
            FIGURES["hangs"] += 1
        assert internal is None, f"{text}\n{internal}"
        assert elapsed <= LIMIT + GRACE, f"{text}\nran {elapsed:.1f} s past its limit of {LIMIT} s"


@pytest.fixture(autouse=True)
def _in_empty_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    yield


@budget(30)
@given(cases())
def test_fuzzed_case_files_in_process(case):
    before = sorted(os.listdir("."))
    _run_in_process(_dump(case))
    assert sorted(os.listdir(".")) == before


@budget(60)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300)))
def test_fuzzed_bytes_in_process(data):
    text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
    _run_in_process(text)


@budget(40)
@given(expressions(True), expressions(False))
def test_fuzzed_torch_expressions_in_process(torch_text, expr_text):
    _run_in_process(_dump({"name": "fz", "variables": {"x": {"shape": [2]}, "y": {}}, "constants": {"k": 2},
                           "let": {"z": "x * 2"}, "expr": expr_text, "torch": torch_text, "samples": 2,
                           "dtypes": ["float64"], "timeout": LIMIT}))


@budget(6)
@given(st.one_of(cases().map(lambda case: _dump({**case, "timeout": LIMIT})), st.binary(max_size=200)))
def test_fuzzed_case_files_through_the_cli(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("cli")
    path = Path(folder) / "fuzz.yaml"
    path.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    out = Path(folder) / "out"
    before = sorted(os.listdir(folder))
    cwd_before = sorted(os.listdir("."))
    FIGURES["inputs"] += 1
    started = time.monotonic()
    result = CliRunner().invoke(main, ["run", str(path), "-j", "1", "--no-cache", "--json", str(out / "r.json"),
                                       "--report", str(out / "report")])
    assert time.monotonic() - started < 300 + GRACE
    if result.exit_code == 3:
        FIGURES["internal errors"] += 1
    assert result.exit_code in (0, 1, 2, 5), result.output
    assert sorted(os.listdir(folder)) == sorted(before + ["out"]) or sorted(os.listdir(folder)) == before
    assert sorted(os.listdir(".")) == cwd_before


def test_zz_print_figures():
    """Printed with -s: the figures of this run (inputs, internal errors, hangs)."""
    print(f"\nfuzz figures: {FIGURES}")
