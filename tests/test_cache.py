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
    return sorted((directory / "derivations").rglob("*.json"))


def stats_of_run(path: Path, directory: Path, monkeypatch: pytest.MonkeyPatch, enabled: bool = True,
                 **options):
    """runner.run with a cache in ``directory`` passed in: (report, the cache with its statistics)."""
    store = cache.DerivationCache(directory) if enabled else None
    report = runner.run([str(path)], runner.RunOptions(cache=store if enabled else False, **options))
    return report, store


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
    check_case(make_case("alone", "sigmoid(x)", samples=3))
    assert not (tmp_path / "store").exists()


def test_a_hit_gives_formulas_back(case_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from diffcheck.runner import list_cases
    from diffcheck.symbolic import compile_case
    (case,), _ = list_cases([str(case_dir / "softmax.yaml")])
    fresh = compile_case(case)
    computed = fresh.targets(fresh.checks[0])[0]
    store = cache.DerivationCache(tmp_path / "store")
    storing = compile_case(case)
    storing.cache = store
    storing.targets(fresh.checks[0])  # stores
    again = compile_case(case)
    again.cache = store
    loaded = again.targets(again.checks[0])[0]
    assert store.stats.hits == 1
    assert isinstance(loaded.exprs, ExprList)
    assert (loaded.rows, loaded.cols, loaded.label) == (computed.rows, computed.cols, computed.label)
    import sympy as sp
    assert all(sp.simplify(a - b) == 0 for a, b in zip(loaded.exprs, computed.exprs))


# -- the cache holds data, never code -------------------------------------------------------------

def _entry(store: Path) -> tuple[Path, dict]:
    import json
    path = entries(store)[0]
    return path, json.loads(path.read_text())


def test_entries_are_json_data_and_name_their_key(case_dir: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    stats_of_run(case_dir, store, monkeypatch)
    for path in entries(store):
        import json
        data = json.loads(path.read_text())
        assert data["format"] == cache.FORMAT and data["key"] == path.stem
        ops = {node[0] for t in data["targets"] for node in t["program"]["nodes"]}
        assert ops <= set(cache.OPS) - {"foreign"}


def test_an_entry_copied_under_another_key_is_refused(case_dir: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The attack of issue 10: an entry of another case copied under this case's key made a
    wrong gradient pass. Its own key does not match: refused, recomputed, noted."""
    store = tmp_path / "store"
    first, _ = stats_of_run(case_dir, store, monkeypatch)
    paths = entries(store)
    sizes = {p: p.stat().st_size for p in paths}
    donor, victim = max(paths, key=sizes.get), min(paths, key=sizes.get)
    victim.write_bytes(donor.read_bytes())
    second, c = stats_of_run(case_dir, store, monkeypatch)
    assert c.stats.misses == 1 and c.stats.hits == 2 and c.stats.writes == 1
    assert any("another key" in e for e in c.stats.errors)
    assert results(second) == results(first)


@pytest.mark.parametrize("tamper", ["rekeyed", "hash", "op", "child", "number", "pickle"])
def test_a_tampered_entry_is_refused_and_recomputed(case_dir: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch, tamper: str) -> None:
    import json
    import pickle
    store = tmp_path / "store"
    first, _ = stats_of_run(case_dir, store, monkeypatch)
    path, data = _entry(store)
    nodes = data["targets"][0]["program"]["nodes"]
    if tamper == "rekeyed":      # another entry's content, its key rewritten to this one: the hash holds,
        data["targets"][0]["rows"] = data["targets"][0]["rows"][::-1] + ["extra"]   # the shape does not
        data["sha256"] = cache._digest(data["targets"])
    elif tamper == "hash":       # content changed, hash left: refused
        nodes.append(["num", [], "1/1"])
    elif tamper == "op":         # an op that is not in the language, hash recomputed
        nodes[0][0] = "__import__"
        data["sha256"] = cache._digest(data["targets"])
    elif tamper == "child":      # a cycle
        nodes[0][1] = [len(nodes) - 1]
        data["sha256"] = cache._digest(data["targets"])
    elif tamper == "number":
        numbers = [n for n in nodes if n[0] == "num"] or [nodes[0]]
        numbers[0][:] = ["num", [], "os.system('x')"]
        data["sha256"] = cache._digest(data["targets"])
    if tamper == "pickle":       # the old format: never unpickled
        path.write_bytes(b"diffcheck-derivations 1\n" + pickle.dumps({"x": 1}))
    else:
        path.write_text(json.dumps(data))
    second, c = stats_of_run(case_dir, store, monkeypatch)
    assert c.stats.misses == 1 and c.stats.hits == 2 and c.stats.writes == 1
    assert len(c.stats.errors) == 1 and "refused" in c.stats.errors[0]
    assert results(second) == results(first)


def test_the_cache_works_in_process_too(case_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = tmp_path / "store"
    first, c1 = stats_of_run(case_dir, store, monkeypatch, in_process=True)
    second, c2 = stats_of_run(case_dir, store, monkeypatch, jobs=2)
    assert c1.stats.writes == 3 and c2.stats.misses == 0 and c2.stats.hits >= 3  # each worker reads what it needs
    assert results(second) == results(first)


def test_symbolic_does_not_reach_for_a_global_cache() -> None:
    import diffcheck.symbolic.cache as module
    assert not hasattr(module, "use") and not hasattr(module, "_active")
