"""The typed result model: enums that write the same JSON bytes, frozen results built once,
and a JSON contract that reads back into the same result."""

from __future__ import annotations

import dataclasses
import json

import pytest

from diffcheck import compare
from diffcheck.report.jsonout import dumps
from diffcheck.results import (
    ClaimRow, DescentStep, Details, KinkFinding, PointClass, Result, RunReport, SearchHit,
    SingularPoint, Status, WorstPoint,
)


def _full() -> Result:
    return Result(
        case="c", file="cases/c.yaml", check="gradient", mode="reverse", dtype="float64",
        status=Status.FAIL, points=3, max_abs_error=1.0, max_rel_error=float("inf"), max_ulp_error=None,
        worst_point=WorstPoint({"x": 0.5}, "d y / d x", 1.0, float("nan"), 1.0, 1.0, 2.0, "2*x"),
        message="m", counts={PointClass.PASS: 2, PointClass.FAIL: 1}, tolerance={"rtol": 1e-6, "atol": 0.0},
        details=Details(
            kinks=(KinkFinding("abs(x)", "gradient", {"x": 0.0}, "d y / d x", -1.0, 1.0, 3.0,
                               KinkFinding.OUTSIDE),),
            singular=(SingularPoint({"x": 0.0}, "d y / d x", "inf", float("inf"), float("inf"), "+inf",
                                    float("inf"), True),),
            regions=("NaN for x < 0",), notes=("vmap fell back",), search=SearchHit({"x": 2.5}, "points: [{x: 2.5}]",
                                                                                      "sweep")),
        ratio=7.5, original_status=None)


def test_statuses_and_point_classes_are_the_plain_strings_in_json():
    assert json.dumps(Status.NOT_DIFFERENTIABLE) == '"not_differentiable"'
    assert Status.PASS == "pass" and str(Status.XFAIL) == "xfail"
    # the checker's point classes are exactly the enum, in the same severity order
    assert tuple(PointClass) == compare.CLASSES


def test_a_result_is_frozen_and_judged_again_as_a_new_value():
    r = _full()
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.status = Status.PASS  # type: ignore[misc]
    x = r.with_outcome(Status.XFAIL, "expected failure")
    assert r.status == Status.FAIL and x.status == Status.XFAIL and x.original_status == Status.FAIL
    assert x.failed_as_expected and not x.failed and r.failed
    assert x.to_dict()["details"]["original_status"] == "fail"


def test_json_reads_back_into_the_same_result():
    r = _full()
    d = json.loads(json.dumps(r.to_dict()))
    assert d["details"]["tolerance_ratio"] == 7.5
    assert d["details"]["search"] == {"point": {"x": 2.5}, "points_line": "points: [{x: 2.5}]", "stage": "sweep"}
    assert d["worst_point"]["autograd"] == "nan" and d["max_rel_error"] == "inf"
    back = Result.from_dict(d)
    assert back.to_dict() == r.to_dict()
    assert back.details.kinks[0].outside and back.ratio == 7.5


def test_claim_rows_write_only_the_fields_they_have():
    rows = (ClaimRow(label="torch can differentiate it", claimed=True, exact=None, torch="raised", holds=None,
                     at={"x": 1.0}),)
    r = Result("c", "f", "expect.differentiable", None, None, "error", details=Details(claim=rows, torch_dtype="float64"))
    d = r.to_dict()["details"]
    assert d == {"claim": [{"label": "torch can differentiate it", "claimed": True, "exact": None,
                            "torch": "raised", "holds": None, "at": {"x": 1.0}}], "torch_dtype": "float64"}
    assert "tolerance_ratio" not in d  # a claim compares no points against a tolerance
    step = DescentStep(step=0, claimed=None, exact={"w": "0"}, torch={"w": 0.0}, holds=None)
    r = Result("c", "f", "expect.descent", None, None, "pass", details=Details(trajectory=(step,), lr=0.1))
    assert Result.from_dict(r.to_dict()) == r


def test_search_that_found_nothing_is_written_as_before():
    r = dataclasses.replace(_full(), details=Details(search=SearchHit()))
    assert r.to_dict()["details"]["search"] == {"found": None}


def test_run_report_json_is_stable():
    report = RunReport(results=[_full()], seed=3)
    assert dumps(report) == dumps(report)
    assert json.loads(dumps(report))["counts"] == {"fail": 1}
