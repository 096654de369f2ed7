"""``--shard K/N``: a deterministic split of the cases for a CI matrix.

A case belongs to shard ``1 + (h mod N)``, where ``h`` is the first 8 bytes of the SHA-256 of
its file and name: the same on every machine and in every Python (no ``hash()`` salt), and
a case keeps its shard when others are added or removed. A case-file error goes to one shard
by the same hash of its file, so that merging the shards reports it once.
``diffcheck merge`` joins the shards' JSON files into the run of the whole suite.
"""

from __future__ import annotations

import hashlib
from typing import Sequence

from ..case import Case
from ..errors import CaseFileError


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` → (2, 4); ValueError with the reason otherwise."""
    k, sep, n = str(text).strip().partition("/")
    try:
        k_, n_ = int(k), int(n)
    except ValueError:
        raise ValueError(f"{text!r} is not K/N (e.g. 1/4: the first of four shards)") from None
    if not sep or n_ < 1 or not 1 <= k_ <= n_:
        raise ValueError(f"{text!r} is not K/N with 1 <= K <= N (e.g. 1/4)")
    return k_, n_


def _bucket(text: str, n: int) -> int:
    return 1 + int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "big") % n


def shard_of(case: Case, n: int) -> int:
    return _bucket(f"{case.file}\0{case.name}", n)


def select(cases: Sequence[Case], errors: Sequence[CaseFileError], k: int, n: int
           ) -> tuple[list[Case], list[CaseFileError]]:
    """The cases and case-file errors of shard ``k`` of ``n``."""
    mine = [c for c in cases if shard_of(c, n) == k]
    errs = [e for e in errors if _bucket(e.location.file if e.location else "", n) == k]
    return mine, errs
