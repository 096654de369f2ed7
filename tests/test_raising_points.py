"""An op that raises on some inputs (``inv`` or ``solve`` at a singular matrix) costs those
points only: each is singular where the exact expression is undefined there too, an error at
that point (with torch's message) where it is finite; the other points are still compared."""

from __future__ import annotations

from conftest import make_case

from diffcheck.pipeline import CheckOptions, check_case

SINGULAR = [[1, 2], [2, 4]]
REGULAR = [{"A": [[2, 1], [0.5, 1.5]]}, {"A": [[1.5, -0.5], [1, 0.25]]}]
MATRIX = {"A": {"shape": [2, 2], "domain": [-2, 2]}}


def results(case):
    return check_case(case, CheckOptions()).results


def test_inv_at_a_singular_matrix_is_singular_there_and_compared_elsewhere():
    case = make_case("inv", "inv(A)", MATRIX, dtypes=["float64", "float32"],
                     modes=["reverse", "backward", "forward"], samples=0,
                     points=[REGULAR[0], {"A": SINGULAR}, REGULAR[1]])
    rs = results(case)
    assert len(rs) == 8
    for r in rs:
        assert r.status == "singular", (r.check, r.mode, r.dtype, r.message)
        assert r.counts.get("pass") == 2 and r.counts.get("undefined") == 1, r.counts
        assert "torch raised at 1 of 3 points" in r.message and "singular" in r.message


def test_solve_at_a_singular_matrix_is_singular_there():
    case = make_case("solve", "solve(A, b)", {**MATRIX, "b": {"shape": [2]}}, dtypes=["float64"],
                     modes=["reverse", "backward"], samples=0,
                     points=[{"A": REGULAR[0]["A"], "b": [1, 2]}, {"A": SINGULAR, "b": [1, 2]},
                             {"A": SINGULAR, "b": [1, 0]}])
    for r in results(case):
        assert r.status == "singular", (r.check, r.mode, r.message)
        assert r.counts.get("pass") == 1, r.counts


def test_torch_raising_where_the_exact_value_is_finite_is_an_error_at_that_point():
    # det(inv(inv(A))) is det(A), finite (0) at a singular matrix, where torch's inv raises
    case = make_case("det_via_inv", "det(A)", MATRIX, torch="torch.linalg.det(torch.linalg.inv(torch.linalg.inv(A)))",
                     dtypes=["float64"], modes=["reverse", "forward"], samples=0,
                     points=[REGULAR[0], {"A": SINGULAR}, REGULAR[1]])
    rs = results(case)
    assert [r.status for r in rs] == ["error"] * 3
    for r in rs:
        assert r.counts == {"pass": 2, "raised": 1}, r.counts
        assert r.points == 2
        assert "torch raised at 1 of 3 points where the exact value is finite" in r.message
        assert "A = [[1.0, 2.0], [2.0, 4.0]]" in r.message and "singular" in r.message


def test_every_point_raising_where_the_value_is_finite_stays_one_error():
    case = make_case("det_via_inv", "det(A)", MATRIX, torch="torch.linalg.det(torch.linalg.inv(A))",
                     dtypes=["float64"], modes=["reverse"], samples=0, points=[{"A": SINGULAR}])
    for r in results(case):
        assert r.status == "error" and r.message.startswith("torch raised: _LinAlgError"), r.message


def test_every_point_singular_where_torch_raises_is_singular():
    case = make_case("inv", "inv(A)", MATRIX, dtypes=["float64"], modes=["reverse"], samples=0,
                     points=[{"A": SINGULAR}])
    for r in results(case):
        assert r.status == "singular", r.message


def test_a_fault_of_the_code_everywhere_is_still_one_error():
    # torch raises at every point for a reason of the code, not of a point
    case = make_case("shape", "x * 2", torch="torch.cat([x, x])", dtypes=["float64"], modes=["reverse"],
                     samples=3)
    rs = results(case)
    assert all(r.status == "error" for r in rs), [r.message for r in rs]
    assert all("raised at" not in r.message for r in rs)
