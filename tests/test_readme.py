"""The README's "How it works" names every module of the package, and nothing that is not one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_how_it_works_lists_the_folder():
    text = ROOT.joinpath("README.md").read_text()
    section = text[text.index("## How it works"):]
    listing = section[section.index("diffcheck/\n"):]
    listing = listing[:listing.index("```")]
    named = set(re.findall(r"[a-z_]+(?:\.py|/)", listing))
    package = ROOT / "diffcheck"
    modules = {p.name for p in package.glob("*.py")} | {p.name + "/" for p in package.iterdir()
                                                         if p.is_dir() and (p / "__init__.py").exists()}
    inner = {p.name for d in package.iterdir() if d.is_dir() for p in d.glob("*.py") if p.name != "__init__.py"}
    assert modules - named == set(), "modules the README does not name"
    assert inner - named == set(), "modules of the subpackages the README does not name"
    assert named - modules - inner - {"diffcheck/", "__init__.py"} == set(), "names the README lists that do not exist"
