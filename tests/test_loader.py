"""Tests of diffcheck.loader: case files in, Cases or placed CaseFileErrors out."""

from __future__ import annotations

import copy
import json
import pickle
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from diffcheck.case import DEFAULT_DOMAIN, DEFAULT_DTYPES, DEFAULT_MODES, Check, Tolerance, Variable
from diffcheck.errors import CaseFileError, Location
from diffcheck.loader import (
    MAX_BYTES,
    WrittenFloat,
    discover,
    load_file,
    load_paths,
    load_text,
)

DATA = Path(__file__).parent / "data" / "loader"

MINIMAL = "name: a\nvariables: {x: {}}\nexpr: x\n"


def load(text: str) -> tuple[list, list[CaseFileError]]:
    return load_text(textwrap.dedent(text), "c.yaml")


def only_error(text: str) -> CaseFileError:
    cases, errors = load(text)
    assert cases == []
    assert len(errors) == 1, [str(e) for e in errors]
    return errors[0]


def rendered(text: str) -> list[str]:
    return [str(error) for error in load(text)[1]]


# --- valid files -----------------------------------------------------------------------

def test_single_case_file_with_most_keys():
    cases, errors = load_file(DATA / "single.yaml")
    assert errors == []
    [case] = cases
    file = str(DATA / "single.yaml")
    assert case.name == "linear-least-squares"
    assert case.file == file
    assert case.location == Location(file, 2, 1)
    assert case.description == "gradient of a squared error"
    assert case.variables == (Variable("w", (3,), (-1.0, 1.0)), Variable("b", (), DEFAULT_DOMAIN))
    assert case.constants == {"X": [[1, 2, 3], [4, 5, 6]], "y": [1.0, 2.0]}
    assert case.let == (("r", "X @ w + b - y"), ("two", "2"))
    assert case.expr == "sum(r**2)"
    assert case.torch == "torch.sum(r ** 2)"
    assert case.imports == {"fused": "mypkg.ops:fused_softmax"}
    assert case.checks == (Check("gradient"), Check("hessian", 2), Check("intermediates"))
    assert case.modes == ("reverse", "backward")
    assert case.points == ({"w": [0.0, 0.0, 0.0], "b": 1.0},)
    assert all(isinstance(v, float) for v in case.points[0]["w"])
    assert (case.samples, case.seed, case.dtypes) == (8, 3, ("float64",))
    assert case.tolerance == {"float64": Tolerance(1e-7, 0.0)}
    assert case.expect == {"gradient": {"b": "2 * sum(r)"},
                           "values": [{"at": {"w": [0, 0, 0], "b": 0}, "gradient": {"b": -6.0}}]}
    assert case.xfail == "known to be off"
    assert case.timeout == 60.0


def test_positions_point_at_values_and_inside_quotes():
    [case], _ = load_file(DATA / "single.yaml")
    file = str(DATA / "single.yaml")
    assert case.positions["expr"] == Location(file, 13, 8)  # after the opening quote
    assert case.positions["torch"] == Location(file, 14, 8)
    assert case.positions["let.r"] == Location(file, 11, 6)
    assert case.positions["variables.w"] == Location(file, 5, 6)
    assert case.positions["constants.X"] == Location(file, 8, 6)
    assert case.positions["points.0"] == Location(file, 19, 5)
    assert case.positions["imports.fused"] == Location(file, 15, 19)
    assert case.positions["expect"] == Location(file, 25, 3)
    assert case.positions["expect.values.0"] == Location(file, 27, 7)
    assert case.where("expect.gradient.b") == Location(file, 25, 17)
    assert case.where("no.such.key") == case.location


def test_a_column_plus_offset_points_into_the_expression():
    [case], _ = load('''\
        name: a
        variables: {x: {}}
        expr: 'x + y'
        let:
          z: "exp(x)"
        ''')
    line = "expr: 'x + y'"
    assert line[case.positions["expr"].column - 1 + 4] == "y"
    assert case.positions["let.z"] == Location("c.yaml", 5, 7)


def test_block_scalar_position_is_its_first_content_line():
    [case], _ = load("name: a\nvariables: {x: {}}\nexpr: |\n    x +\n    1\n")
    assert case.expr == "x +\n1\n"
    assert case.positions["expr"] == Location("c.yaml", 4, 5)


def test_defaults_of_a_minimal_case():
    [case], errors = load(MINIMAL)
    assert errors == []
    assert case.variables == (Variable("x"),)
    assert case.checks is None
    assert case.modes == DEFAULT_MODES and case.dtypes == DEFAULT_DTYPES
    assert case.samples == 32 and case.seed == 0 and case.tolerance == {}
    assert case.expect is None and case.points == () and case.let == ()


def test_multi_case_file_merges_defaults_case_keys_win():
    cases, errors = load_file(DATA / "multi.yaml")
    assert errors == []
    sigmoid, tanh = cases
    assert sigmoid.dtypes == tanh.dtypes == ("float64", "float32")
    assert (sigmoid.samples, tanh.samples) == (4, 1)
    assert sigmoid.variables == (Variable("x", (), (-30.0, 30.0)),)
    file = str(DATA / "multi.yaml")
    assert sigmoid.location == Location(file, 5, 5)
    assert sigmoid.positions["dtypes"] == Location(file, 2, 11)  # where the default is
    assert tanh.positions["samples"] == Location(file, 11, 14)


def test_numbers_are_read_like_yaml_1_2_and_expressions_may_be_numbers():
    [case], errors = load('''\
        name: a
        variables: {x: {domain: [-1e3, 2.5E+2]}}
        expr: 2
        let: {h: 0.5}
        tolerance: {rtol: 1e-3, atol: 1.0e-8}
        ''')
    assert errors == []
    assert case.variables[0].domain == (-1000.0, 250.0)
    assert case.expr == "2" and case.let == (("h", "0.5"),)
    assert case.tolerance == {"*": Tolerance(1e-3, 1e-8)}


def test_checks_derivative_and_per_dtype_tolerance():
    [case], errors = load('''\
        name: a
        variables: {x: {}}
        expr: x**3
        check: [{derivative: 3}, jacobian]
        tolerance: {float32: {rtol: 1, atol: 2}, bfloat16: {rtol: 0.5, atol: 0}}
        samples: 1
        ''')
    assert errors == []
    assert case.checks == (Check("derivative", 3), Check("jacobian"))
    assert case.checks[0].label == "derivative3"
    assert case.tolerance == {"float32": Tolerance(1.0, 2.0), "bfloat16": Tolerance(0.5, 0.0)}


def test_samples_all_with_one_scalar_variable_and_a_16_bit_dtype():
    [case], errors = load(MINIMAL + "samples: all\ndtypes: [bfloat16, float16]\n")
    assert errors == []
    assert case.samples == "all"


def test_expect_numbers_remember_how_they_were_written():
    [case], _ = load(MINIMAL + "expect:\n  values:\n    - at: {x: 3}\n      gradient: {x: 1.50}\n")
    number = case.expect["values"][0]["gradient"]["x"]
    assert number == 1.5 and isinstance(number, WrittenFloat) and number.text == "1.50"
    assert pickle.loads(pickle.dumps(number)).text == "1.50"
    assert copy.deepcopy(number).text == "1.50"


def test_empty_or_null_variable_spec_and_empty_check_list():
    [case], errors = load("name: a\nvariables:\n  x:\n  y: {}\nexpr: x*y\ncheck: []\n")
    assert errors == []
    assert case.variables == (Variable("x"), Variable("y"))
    assert case.checks == ()


# --- YAML-level errors -----------------------------------------------------------------

def test_yaml_syntax_error_is_placed_one_based():
    error = only_error("name: a\nexpr: f(x): 2\n")
    assert str(error).startswith("c.yaml:2:11: invalid YAML: mapping values are not allowed here")
    assert error.hint


def test_tab_indentation_hint():
    error = only_error("name: a\n\tvariables: {}\n")
    assert error.location == Location("c.yaml", 2, 1)
    assert "tabs" in error.hint


def test_several_yaml_documents_are_refused():
    error = only_error("name: a\n---\nname: b\n")
    assert error.location == Location("c.yaml", 2, 1)
    assert "cases:" in error.hint


@pytest.mark.parametrize("text, where", [
    ("name: a\nvariables: &v {x: {}}\nexpr: x\n", (2, 12)),
    ("defaults: &d {seed: 1}\ncases:\n  - name: a\n", (1, 11)),
    ("name: a\nvariables: {x: {}}\nexpr: x\nlet: {y: *x}\n", (4, 10)),
])
def test_aliases_and_anchors_are_refused(text, where):
    error = only_error(text)
    assert error.message == "YAML aliases/anchors are not allowed in case files"
    assert (error.location.line, error.location.column) == where


@pytest.mark.parametrize("text", ["name: !!python/object:os.system a\n", "name: !custom a\n",
                                  "name: a\nexpr: !!binary eA==\n"])
def test_unusual_tags_are_refused(text):
    error = only_error(text)
    assert "is not allowed in case files" in error.message


def test_standard_tags_are_accepted():
    [case], errors = load("name: !!str 007\nvariables: !!map {x: {}}\nexpr: !!str 1.5\n")
    assert errors == []
    assert case.name == "007" and case.expr == "1.5"


def test_duplicate_key():
    assert rendered(MINIMAL + "expr: y\n") == [
        "c.yaml:4:1: duplicate key 'expr' (it is already given at line 3; keep only one)"]


def test_deep_nesting_is_refused():
    error = only_error(MINIMAL + "constants: {c: " + "[" * 60 + "1" + "]" * 60 + "}\n")
    assert "nested more than 50 levels" in error.message
    assert error.location.line == 4


def test_too_large_file(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(MINIMAL + "description: '" + "x" * MAX_BYTES + "'\n")
    cases, [error] = load_file(path)
    assert cases == [] and "larger than 1 MiB" in error.message


def test_special_and_non_utf8_characters(tmp_path):
    assert rendered("name: a\x00\n") == [
        "c.yaml:1:8: case file contains the special character U+0000 (remove it; case files are plain text)"]
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"name: a\ndescription: caf\xe9\n")
    _, [error] = load_file(path)
    assert error.location == Location(str(path), 2, 17)
    assert "UTF-8" in error.message


def test_unreadable_number_is_reported_once():
    assert rendered(MINIMAL + "seed: " + "9" * 5000 + "\n") == [
        "c.yaml:4:7: cannot read '" + "9" * 57 + "...' as int (write a plain number, or quote it as text)"]


def test_missing_file():
    _, [error] = load_file("/no/such/case.yaml")
    assert error.location == Location("/no/such/case.yaml")
    assert error.message.startswith("could not read case file")


@pytest.mark.parametrize("text", ["", "# only a comment\n", "~\n", "cases: []\n", "cases:\n"])
def test_no_case_in_file(text):
    assert only_error(text).message == "no case in file"


def test_top_level_must_be_a_mapping():
    error = only_error("- name: a\n")
    assert error.location == Location("c.yaml", 1, 1)
    assert "put the list under `cases:`" in error.hint


def test_unknown_top_level_key_in_multi_case_file():
    assert rendered("defaults: {}\ncasses: []\n") == [
        "c.yaml:1:1: no case in file (list the cases under `cases:`, each with `name:`, `variables:` and `expr:`)",
        "c.yaml:2:1: unknown key 'casses' in the file (did you mean 'cases'?)",
    ]


def test_defaults_keys_are_checked_once():
    assert rendered('''\
        defaults: {sed: 1, name: x}
        cases:
          - name: a
            variables: {x: {}}
            expr: x
        ''') == [
        "c.yaml:1:12: unknown key 'sed' in `defaults` (did you mean 'seed'?)",
        "c.yaml:1:20: `name` cannot be a default: every case needs its own name (move `name` into each case)",
    ]


def test_a_bad_default_value_is_reported_once_for_all_cases():
    cases, errors = load('''\
        defaults: {dtypes: [float65]}
        cases:
          - {name: a, variables: {x: {}}, expr: x}
          - {name: b, variables: {x: {}}, expr: x}
        ''')
    assert cases == []
    assert [str(e) for e in errors] == [
        "c.yaml:1:21: `dtypes[0]` must be one of float64, float32, float16, bfloat16, got 'float65' (str)"
        " (did you mean 'float64'?)"]


# --- schema errors, placed and worded ---------------------------------------------------

def test_misspelt_case_key_in_a_multi_case_file():
    cases, errors = load_file(DATA / "typo.yaml")
    assert [c.name for c in cases] == ["square"]
    assert [str(e) for e in errors] == [
        f"{DATA / 'typo.yaml'}:6:5: case 'sigmoid' is missing the required key `variables`"
        " (add `variables: {x: {}}`)",
        f"{DATA / 'typo.yaml'}:7:5: unknown key 'variabels' in case 'sigmoid' (did you mean 'variables'?)",
    ]
    assert errors[1].case == "sigmoid"


@pytest.mark.parametrize("variables, extra, expected", [
    ("{x: {domian: [0, 1]}}", "",
     "c.yaml:3:17: unknown key 'domian' in variable 'x' of case 'a' (did you mean 'domain'?)"),
    ("{x: {}}", "tolerance: {rtol: 1, atl: 2}",
     "c.yaml:4:22: unknown key 'atl' in `tolerance` of case 'a' (did you mean 'atol'?)"),
    ("{x: {}}", "tolerance: {float32: {rtol: 1, atoll: 2}}",
     "c.yaml:4:32: unknown key 'atoll' in `tolerance.float32` of case 'a' (did you mean 'atol'?)"),
    ("{x: {}}", "tolerance: {flaot32: {rtol: 1, atol: 2}}",
     "c.yaml:4:13: unknown key 'flaot32' in `tolerance` of case 'a' (did you mean 'float32'?)"),
    ("{x: {}}", "expect: {derivatives: x}",
     "c.yaml:4:10: unknown key 'derivatives' in `expect` of case 'a' (did you mean 'derivative'?)"),
    ("{x: {}}", "check: [{derivativ: 2}]",
     "c.yaml:4:10: unknown key 'derivativ' in `check[0]` of case 'a' (did you mean 'derivative'?)"),
    ("{x: {}}", "zzz: 1",
     "c.yaml:4:1: unknown key 'zzz' in case 'a' (valid keys: name, description, variables, constants, let, "
     "expr, torch, imports, check, modes, points, samples, seed, dtypes, tolerance, expect, xfail, timeout)"),
])
def test_unknown_keys_at_every_level_with_suggestions(variables, extra, expected):
    assert expected in rendered(f"name: a\nexpr: x\nvariables: {variables}\n{extra}\n")


@pytest.mark.parametrize("line, expected", [
    ("samples: many", "c.yaml:4:10: `samples` must be a whole number or 'all', got 'many' (str)"),
    ("samples: -1", "c.yaml:4:10: `samples` must not be negative, got -1"),
    ("samples: true", "c.yaml:4:10: `samples` must be a whole number or 'all', got true (bool)"),
    ("seed: 1.5", "c.yaml:4:7: `seed` must be a whole number >= 0, got 1.5 (float)"),
    ("timeout: 0", "c.yaml:4:10: `timeout` must be a positive number of seconds, got 0 (int)"),
    ("description: [1]", "c.yaml:4:14: `description` must be text, got [1] (list)"),
    ("xfail: true", "c.yaml:4:8: `xfail` must be text, got true (bool)"),
    ("torch: 3", "c.yaml:4:8: `torch` must be text, got 3 (int)"),
    ("modes: reverse", "c.yaml:4:8: `modes` must be a list of modes, got 'reverse' (str)"
                       " (write it as a list: [reverse])"),
    ("modes: []", "c.yaml:4:8: `modes` must name at least one of the modes: reverse, backward, forward"),
    ("modes: [reverse, forwad]", "c.yaml:4:18: `modes[1]` must be one of reverse, backward, forward, "
                                 "got 'forwad' (str) (did you mean 'forward'?)"),
    ("dtypes: [float32, float32]", "c.yaml:4:19: `dtypes[1]` is 'float32' again (list each one once)"),
    ("check: gradient", "c.yaml:4:8: `check` must be a list of checks, got 'gradient' (str)"),
    ("check: [gradiant]", "c.yaml:4:9: `check[0]` must be one of gradient, jacobian, hessian, intermediates"
                          " or {derivative: n}, got 'gradiant' (str) (did you mean 'gradient'?)"),
    ("check: [derivative]", "c.yaml:4:9: `check[0]` must say which derivative"),
    ("check: [{derivative: 0}]", "c.yaml:4:22: `check[0].derivative` must be a whole number >= 1, got 0 (int)"),
    ("check: [gradient, gradient]", "c.yaml:4:19: `check[1]` is gradient again (list each check once)"),
    ("tolerance: {rtol: -1, atol: 0}", "c.yaml:4:19: `tolerance.rtol` must be >= 0"),
    ("tolerance: {rtol: x, atol: 0}", "c.yaml:4:19: `tolerance.rtol` must be a number, got 'x' (str)"),
    ("tolerance: {rtol: 1}", "c.yaml:4:12: `tolerance` of case 'a' is missing the required key `atol`"
                             " (give both rtol and atol)"),
    ("tolerance: {float32: 1}", "c.yaml:4:22: `tolerance.float32` must be a mapping (key: value), got 1 (int)"),
    ("imports: {f: nomodule}", "c.yaml:4:14: `imports.f` must look like 'package.module:attribute'"),
    ("constants: {c: [[1, 2], [3]]}", "c.yaml:4:25: `constants.c[1]` has shape [1] but the first entry "
                                      "has shape [2] (nested lists must be rectangular)"),
    ("constants: {c: [1, yes]}", "c.yaml:4:20: `constants.c[1]` must be a number or a list of numbers, "
                                 "got true (bool)"),
    ("constants: {c: []}", "c.yaml:4:16: `constants.c` must not be an empty list"),
    ("let: {z: [1]}", "c.yaml:4:10: `let.z` must be an expression (text or a number), got [1] (list)"),
    ("let: {z: ''}", "c.yaml:4:11: `let.z` must not be empty"),
    ("expect: {values: 3}", "c.yaml:4:18: `expect.values` must be a list, got 3 (int)"),
    ("expect: {differentiable: 'no'}", "c.yaml:4:27: `expect.differentiable` must be true or false"),
    ("points: [3]", "c.yaml:4:10: `points[0]` must be a mapping (key: value), got 3 (int)"),
])
def test_wrong_values_are_placed_and_explained(line, expected):
    errors = rendered(MINIMAL + line + "\n")
    assert len(errors) == 1 and errors[0].startswith(expected), errors


@pytest.mark.parametrize("variables, expected", [
    ("{x: {shape: 3}}", "c.yaml:2:24: `variables.x.shape` must be a list of sizes like [3] or [2, 4], got 3"
                        " (int) (write `shape: [3]`)"),
    ("{x: {shape: [2, 0]}}", "c.yaml:2:28: `variables.x.shape[1]` must be a whole number >= 1, got 0 (int)"),
    ("{x: {domain: [1, -1]}}", "c.yaml:2:25: `variables.x.domain` must have low < high, got [1, -1]"
                               " (swap the bounds)"),
    ("{x: {domain: [0, .inf]}}", "c.yaml:2:29: `variables.x.domain[1]` must be a finite number, got inf"),
    ("{x: {domain: [0]}}", "c.yaml:2:25: `variables.x.domain` must be [low, high], got [0] (list)"),
    ("{x: 3}", "c.yaml:2:16: `variables.x` must be a mapping (key: value), got 3 (int)"),
    ("[x]", "c.yaml:2:12: `variables` must be a mapping (key: value), got ['x'] (list)"),
    ("{}", "c.yaml:2:12: `variables` must be non-empty, got {} (mapping)"),
    ("{_x: {}}", "c.yaml:2:13: invalid name '_x' in `variables`"),
    ("{2x: {}}", "c.yaml:2:13: invalid name '2x' in `variables`"),
    ("{lambda: {}}", "c.yaml:2:13: 'lambda' in `variables` is a reserved word and cannot be a name"),
    ("{pi: {}}", "c.yaml:2:13: 'pi' in `variables` is a reserved word and cannot be a name"),
])
def test_variable_errors(variables, expected):
    errors = rendered(f"name: a\nvariables: {variables}\nexpr: x\n")
    assert len(errors) == 1 and errors[0].startswith(expected), errors


@pytest.mark.parametrize("text, expected", [
    ("variables: {x: {}}\nexpr: x\n", "c.yaml:1:1: the case is missing the required key `name`"),
    ("name: a\nexpr: x\n", "c.yaml:1:1: case 'a' is missing the required key `variables`"),
    ("name: a\nvariables: {x: {}}\n", "c.yaml:1:1: case 'a' is missing the required key `expr`"),
    ("name: a b\nvariables: {x: {}}\nexpr: x\n",
     "c.yaml:1:7: case name 'a b' may only contain letters, digits, '_', '.' and '-' (for example 'a_b')"),
    ("name: 12\nvariables: {x: {}}\nexpr: x\n", "c.yaml:1:7: `name` must be text, got 12 (int) (put it in quotes)"),
])
def test_required_keys_and_case_name(text, expected):
    errors = rendered(text)
    assert len(errors) == 1 and errors[0].startswith(expected), errors


def test_missing_keys_in_a_multi_case_file_are_placed_at_the_case():
    cases, errors = load("cases:\n  - name: a\n    expr: x\n  - name: b\n    variables: {x: {}}\n    expr: x\n")
    assert [c.name for c in cases] == ["b"]
    assert [str(e) for e in errors] == [
        "c.yaml:2:5: case 'a' is missing the required key `variables` (add `variables: {x: {}}`)"]


def test_a_case_that_is_not_a_mapping_is_reported_and_the_others_kept():
    cases, errors = load("cases:\n  - 3\n  - {name: b, variables: {x: {}}, expr: x}\n")
    assert [c.name for c in cases] == ["b"]
    assert str(errors[0]).startswith("c.yaml:2:5: a case must be a mapping, not 3 (int)")


# --- checks across keys ------------------------------------------------------------------

def test_names_must_not_collide():
    assert rendered('''\
        name: a
        variables: {x: {}}
        constants: {x: 1, c: 2}
        let: {c: x}
        imports: {x: "m:f"}
        expr: x
        ''') == [
        "c.yaml:3:13: name 'x' is used both as a variable and as a constant (rename one of them)",
        "c.yaml:4:7: name 'c' is used both as a constant and as a let step (rename one of them)",
        "c.yaml:5:11: name 'x' is used both as a variable and as an import (rename one of them)",
    ]


def test_points_must_give_every_variable_and_no_other():
    assert rendered('''\
        name: a
        variables: {x: {}, w: {shape: [2]}}
        expr: x
        points:
          - {x: 1, w: [1, 2]}
          - {x: 1}
          - {x: 1, w: [1, 2], v: 3}
          - {x: [1], w: [1, 2, 3]}
        ''') == [
        "c.yaml:6:5: `points[1]` gives no value for variable 'w' (every point gives every variable: x, w)",
        "c.yaml:7:23: `points[2]` gives 'v', which is not a variable of case 'a' (the variables are x, w)",
        "c.yaml:8:9: `points[3].x` has shape [1] but variable 'x' has shape [] (give a number)",
        "c.yaml:8:17: `points[3].w` has shape [3] but variable 'w' has shape [2] "
        "(give nested lists of shape [2])",
    ]


def test_samples_all_needs_one_scalar_variable_and_16_bit_dtypes():
    assert rendered(MINIMAL + "samples: all\n")[0].startswith(
        "c.yaml:4:10: `samples: all` is only possible for 16-bit dtypes, but `dtypes` includes float64, float32")
    assert rendered("name: a\nvariables: {x: {shape: [2]}}\nexpr: x\nsamples: all\ndtypes: [float16]\n") == [
        "c.yaml:4:10: `samples: all` needs exactly one scalar variable (give a number of samples instead)"]


def test_nth_derivative_needs_one_scalar_variable():
    errors = rendered("name: a\nvariables: {x: {}, y: {}}\nexpr: x*y\ncheck: [gradient, {derivative: 2}]\n")
    assert errors == ["c.yaml:4:19: `{derivative: 2}` needs exactly one scalar variable, but case 'a' has x, y "
                      "(use `gradient`, `jacobian` or `hessian` for several variables)"]


def test_several_errors_of_one_case_are_all_reported_in_file_order():
    errors = load(MINIMAL + "seed: -1\nmodes: [sideways]\nbogus: 1\n")[1]
    assert [(e.location.line, e.location.column) for e in errors] == [(4, 7), (5, 9), (6, 1)]
    assert all(e.case == "a" for e in errors)


# --- one bad case does not lose the others; duplicates --------------------------------------

def test_one_invalid_case_does_not_lose_the_valid_one():
    cases, errors = load_file(DATA / "one_bad_case.yaml")
    assert [c.name for c in cases] == ["good"]
    assert [str(e) for e in errors] == [
        f"{DATA / 'one_bad_case.yaml'}:6:29: `variables.x.shape[0]` must be a whole number >= 1, got 0 (int)"]


def test_duplicate_key_inside_one_case_loses_only_that_case():
    cases, errors = load("cases:\n  - {name: a, variables: {x: {}}, expr: x, expr: y}\n"
                         "  - {name: b, variables: {x: {}}, expr: x}\n")
    assert [c.name for c in cases] == ["b"]
    assert str(errors[0]) == "c.yaml:2:44: duplicate key 'expr' (it is already given at line 2; keep only one)"


def test_duplicate_names_inside_one_file():
    cases, errors = load("cases:\n  - {name: a, variables: {x: {}}, expr: x}\n"
                         "  - {name: a, variables: {x: {}}, expr: 2*x}\n")
    assert [c.expr for c in cases] == ["x"]
    assert errors[0].message == "duplicate case name 'a': defined at c.yaml:2 and again at c.yaml:3"
    assert errors[0].location == Location("c.yaml", 3, 5)


def test_duplicate_names_across_files_name_both_places():
    a, b = DATA / "dup" / "a.yaml", DATA / "dup" / "b.yaml"
    cases, errors = load_paths([DATA / "dup"])
    assert [(c.name, c.file) for c in cases] == [("twice", str(a)), ("once", str(b))]
    [error] = errors
    assert error.location == Location(str(b), 6, 5)
    assert error.message == f"duplicate case name 'twice': defined at {a}:1 and again at {b}:6"
    assert "rename one of them" in error.hint


# --- discovery ------------------------------------------------------------------------------

def test_discover_searches_folders_sorts_and_deduplicates():
    tree = DATA / "tree"
    files, errors = discover([tree / "sub" / "two.yml", tree, tree / "sub" / "notes.txt"])
    assert errors == []
    assert files == [tree / "one.yaml", tree / "sub" / "notes.txt", tree / "sub" / "two.yml"]


def test_discover_reports_missing_paths():
    files, [error] = discover([DATA / "tree" / "one.yaml", "no/such/dir"])
    assert files == [DATA / "tree" / "one.yaml"]
    assert error.location == Location("no/such/dir")


def test_load_paths_collects_cases_and_errors_of_all_files():
    cases, errors = load_paths([DATA / "tree", "missing.yaml"])
    assert [c.name for c in cases] == ["t1", "t2"]
    assert [e.location.file for e in errors] == ["missing.yaml"]  # notes.txt is not searched for


# --- hostile input -------------------------------------------------------------------------

def assert_only_case_file_errors(result):
    cases, errors = result
    assert isinstance(cases, list) and isinstance(errors, list)
    assert all(isinstance(e, CaseFileError) for e in errors)
    for error in errors:
        str(error)
        assert error.location is not None and error.location.file


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=300))
def test_random_bytes_never_raise(tmp_path, data):
    path = tmp_path / "junk.yaml"
    path.write_bytes(data)
    assert_only_case_file_errors(load_file(path))


_YAMLISH = st.lists(st.sampled_from(list("abxyz_019.-: \n\t[]{},&*!|>'\"#%@`?~\\") + [
    "name", "cases", "variables", "expr", "defaults", "shape", "domain", "\x00", "é"]), max_size=80).map("".join)


@settings(max_examples=300, deadline=None)
@given(text=st.one_of(st.text(max_size=200), _YAMLISH))
def test_random_text_never_raises(text):
    assert_only_case_file_errors(load_text(text, "junk.yaml"))


_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=True),
                     st.text(max_size=8))
_VALUES = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(
        ["x", "shape", "domain", "rtol", "atol", "derivative", "at", "_", "a b"]), inner, max_size=3)),
    max_leaves=8)


@settings(max_examples=150, deadline=None)
@given(values=st.dictionaries(st.sampled_from(
    ["name", "variables", "expr", "constants", "let", "check", "modes", "points", "samples", "seed",
     "dtypes", "tolerance", "expect", "timeout", "imports", "torch", "xfail"]), _VALUES, max_size=8))
def test_random_case_structures_never_raise(values):
    text = json.dumps({"name": "a", "variables": {"x": {}}, "expr": "x", **values})  # JSON is YAML
    assert_only_case_file_errors(load_text(text, "junk.yaml"))


def test_an_expression_cut_at_a_comma_in_a_flow_mapping_says_to_quote_it():
    # YAML ends a flow mapping's value at its first comma: `approximate="tanh")` becomes a key
    [line] = rendered('''\
        cases:
          - {name: a, variables: {x: {}}, expr: gelu(x, approximate="tanh")}
        ''')
    assert line.startswith("c.yaml:2:49: unknown key 'approximate=\"tanh\")' in case 'a'")
    assert "cut at a comma" in line and "quote" in line
