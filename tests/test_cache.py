"""The derivation cache: an unchanged case hits, a changed one misses, the results are the
same either way, and a broken cache never breaks a run."""

from __future__ import annotations

from pathlib import Path

import pytest

from diffcheck import runner
from diffcheck.symbolic import cache
from diffcheck.symbolic.dag import ExprList

SOFTMAX = """\
name: c.softmax
variables: {x: {shape: [3]}}
expr: softmax(x)
samples: 5
"""

MSE = """\
name: c.mse
variables: {w: {shape: [2]}}
constants: {X: [[1.5, -2.0], [0.25, 3.0]], y: [1.0, -1.0]}
expr: mse(X @ w, y)
check: [gradient, hessian]
samples: 5
"""


def results(report) -> list[dict]:
    out = []
    for r in report.results:
        d = r.to_dict()
        d.pop("seconds")
        out.append(d)
    return out


@pytest.fixture
def case_dir(tmp_path: Path) -> Path:
    d = tmp_path / "cases"
    d.mkdir()
    (d / "softmax.yaml").write_text(SOFTMAX)
    (d / "mse.yaml").write_text(MSE)
    return d


def entries(directory: Path) -> list[Path]:
    return sorted((directory / "derivations").rglob("*.pkl"))


def stats_of_run(path: Path, directory: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool = True):
    """runner.run with the cache in ``directory``: (report, the run's cache with its statistics)."""
    monkeypatch.setenv("DIFFCHECK_CACHE_DIR", str(directory))
    seen = {}
    real_use = cache.use

    def spy(enabled=True, directory=None):
        cm = real_use(enabled, directory)

        class Wrapper:
            def __enter__(self):
                seen["cache"] = cm.__enter__()
                return seen["cache"]

            def __exit__(self, *exc):
                return cm.__exit__(*exc)
        return Wrapper()
    monkeypatch.setattr(cache, "use", spy)
    report = runner.run([str(path)], runner.RunOptions(cache=enabled))
    monkeypatch.setattr(cache, "use", real_use)
    return report, seen.get("cache")


def test_second_run_hits_and_gives_the_same_results(case_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    first, c1 = stats_of_run(case_dir, store, monkeypatch)
    assert c1.stats.misses == 3 and c1.stats.hits == 0 and c1.stats.writes == 3  # jacobian; gradient, hessian
    assert len(entries(store)) == 3
    second, c2 = stats_of_run(case_dir, store, monkeypatch)
    assert c2.stats.hits == 3 and c2.stats.misses == 0 and c2.stats.writes == 0
    assert results(second) == results(first)
    uncached, c3 = stats_of_run(case_dir, store, monkeypatch, enabled=False)
    assert c3 is None
    assert results(uncached) == results(first)


def test_a_changed_case_misses_and_the_unchanged_one_hits(case_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    stats_of_run(case_dir, store, monkeypatch)
    (case_dir / "softmax.yaml").write_text(SOFTMAX.replace("softmax(x)", "log_softmax(x)"))
    _, c = stats_of_run(case_dir, store, monkeypatch)
    assert c.stats.misses == 1 and c.stats.hits == 2


def test_constant_values_are_part_of_the_key(case_dir: Path, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    stats_of_run(case_dir, store, monkeypatch)
    (case_dir / "mse.yaml").write_text(MSE.replace("y: [1.0, -1.0]", "y: [1.0, -2.0]"))
    _, c = stats_of_run(case_dir, store, monkeypatch)
    assert c.stats.misses == 2 and c.stats.hits == 1


def test_settings_that_do_not_change_derivatives_still_hit(case_dir: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    stats_of_run(case_dir, store, monkeypatch)
    (case_dir / "softmax.yaml").write_text(SOFTMAX.replace("samples: 5", "samples: 7\nseed: 3"))
    _, c = stats_of_run(case_dir, store, monkeypatch)
    assert c.stats.misses == 0 and c.stats.hits == 3


def test_a_corrupt_entry_is_ignored_and_rewritten(case_dir: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    first, _ = stats_of_run(case_dir, store, monkeypatch)
    for path in entries(store):
        path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])  # truncated
    second, c = stats_of_run(case_dir, store, monkeypatch)
    assert c.stats.misses == 3 and c.stats.writes == 3
    assert results(second) == results(first)
    entries(store)[0].write_bytes(b"not a cache entry at all")
    third, c = stats_of_run(case_dir, store, monkeypatch)
    assert c.stats.misses == 1 and c.stats.hits == 2
    assert results(third) == results(first)


def test_no_cache_writes_nothing(case_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    stats_of_run(case_dir, store, monkeypatch, enabled=False)
    assert not store.exists()


def test_an_unwritable_directory_costs_only_the_speed_up(case_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("a file where the cache directory would be")
    report, c = stats_of_run(case_dir, blocker, monkeypatch)
    assert report.exit_code == 0 and c.stats.writes == 0 and c.stats.errors


def test_where_the_cache_lives(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DIFFCHECK_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.cache_dir() == tmp_path / "a"
    monkeypatch.delenv("DIFFCHECK_CACHE_DIR")
    assert cache.cache_dir() == tmp_path / "xdg" / "diffcheck"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.cache_dir() == tmp_path / "home" / ".cache" / "diffcheck"


def test_check_case_alone_does_not_touch_the_disk(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from conftest import make_case

    from diffcheck import check_case
    monkeypatch.setenv("DIFFCHECK_CACHE_DIR", str(tmp_path / "store"))
    assert cache.active() is None
    check_case(make_case("alone", "sigmoid(x)", samples=3))
    assert not (tmp_path / "store").exists()


def test_a_hit_gives_formulas_back(case_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diffcheck.runner import list_cases
    from diffcheck.symbolic import compile_case
    (case,), _ = list_cases([str(case_dir / "softmax.yaml")])
    fresh = compile_case(case)
    computed = fresh.targets(fresh.checks[0])[0]
    with cache.use(True, tmp_path / "store"):
        compile_case(case).targets(fresh.checks[0])  # stores
        again = compile_case(case)
        loaded = again.targets(again.checks[0])[0]
    assert isinstance(loaded.exprs, ExprList)
    assert (loaded.rows, loaded.cols, loaded.label) == (computed.rows, computed.cols, computed.label)
    import sympy as sp
    assert all(sp.simplify(a - b) == 0 for a, b in zip(loaded.exprs, computed.exprs))
