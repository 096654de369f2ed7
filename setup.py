"""Packaging glue that pyproject.toml cannot say: the example cases in ``cases/`` ship inside
the package as ``diffcheck.cases``, so that a pip user can run them (``diffcheck run
--examples``, ``diffcheck init DIR``). Everything else is in pyproject.toml."""

import os

from setuptools import find_packages, setup

CASES = "cases"
case_packages = ["diffcheck." + root.replace(os.sep, ".") for root, _, files in os.walk(CASES)
                 if any(f.endswith((".yaml", ".yml")) for f in files)]
setup(
    packages=find_packages(include=["diffcheck", "diffcheck.*"]) + case_packages,
    package_dir={"diffcheck." + p: p.replace(".", os.sep) for p in (c[len("diffcheck."):] for c in case_packages)},
    package_data={p: ["*.yaml", "*.yml"] for p in case_packages} | {"diffcheck": ["py.typed"]},
)
