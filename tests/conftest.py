"""Shared helpers for the tests: build :class:`~diffcheck.case.Case` objects in Python.

``make_case`` takes the keys of a case file in their YAML spelling (lists, mappings) and
returns the validated data type the loader would produce, so the core can be tested
without YAML::

    from conftest import make_case
    case = make_case("silu", "silu(x)", torch="torch.Tensor.detach(torch.sigmoid(x)) * x")
"""

from __future__ import annotations

from typing import Any, Mapping

import pytest

from diffcheck.case import Case, Check, Tolerance, Variable
from diffcheck.errors import Location

TEST_FILE = "<test>"


@pytest.fixture(autouse=True)
def _private_cache(tmp_path_factory, monkeypatch):
    """Tests never read or write the user's derivation cache."""
    monkeypatch.setenv("DIFFCHECK_CACHE_DIR", str(tmp_path_factory.mktemp("diffcheck-cache")))


def _variable(name: str, spec: Mapping[str, Any]) -> Variable:
    kw: dict[str, Any] = {}
    if "shape" in spec:
        kw["shape"] = tuple(spec["shape"])
    if "domain" in spec:
        kw["domain"] = tuple(float(v) for v in spec["domain"])
    return Variable(name, **kw)


def _check(spec: Any) -> Check:
    if isinstance(spec, Check):
        return spec
    if isinstance(spec, Mapping):
        (kind, order), = spec.items()
        return Check(kind, int(order))
    return Check(spec, 2 if spec == "hessian" else 1)


def _tolerance(spec: Mapping[str, Any]) -> dict[str, Tolerance]:
    if "rtol" in spec or "atol" in spec:
        return {"*": Tolerance(float(spec.get("rtol", 0.0)), float(spec.get("atol", 0.0)))}
    return {dtype: Tolerance(float(t.get("rtol", 0.0)), float(t.get("atol", 0.0))) for dtype, t in spec.items()}


def make_case(name: str, expr: str, variables: Mapping[str, Mapping[str, Any]] | None = None,
              **kw: Any) -> Case:
    """A :class:`Case` from case-file keys: ``variables={"x": {"shape": [3], "domain": [-1, 1]}}``
    (default one scalar ``x``), ``check=["gradient", {"derivative": 3}]``, ``let={"z": "..."}``,
    ``tolerance={"rtol": .., "atol": ..}``, ``dtypes=[...]``, ``modes=[...]``, ``points=[...]``
    and every other :class:`Case` field by its own name."""
    variables = {"x": {}} if variables is None else variables
    fields: dict[str, Any] = {
        "name": name, "file": TEST_FILE, "location": Location(TEST_FILE, 1, 1), "expr": expr,
        "variables": tuple(_variable(n, spec) for n, spec in variables.items()),
    }
    if "check" in kw:
        fields["checks"] = tuple(_check(c) for c in kw.pop("check"))
    if "let" in kw:
        fields["let"] = tuple(dict(kw.pop("let")).items())
    if "tolerance" in kw:
        fields["tolerance"] = _tolerance(kw.pop("tolerance"))
    for key in ("dtypes", "modes", "points"):
        if key in kw:
            fields[key] = tuple(kw.pop(key))
    fields.update(kw)
    return Case(**fields)
