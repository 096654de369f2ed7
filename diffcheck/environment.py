"""What diffcheck runs with: the versions every bug report needs, optional dependencies, and
the example cases shipped inside the package.

Optional dependencies are imported through :func:`optional` only, so that a missing one
says in one line which extra brings it, never with a traceback.
"""

from __future__ import annotations

import importlib
import importlib.util
import platform
import warnings
from importlib import metadata
from pathlib import Path
from types import ModuleType

from .version import __version__
from .errors import MissingDependency

#: optional backends: module → the extra that installs it, and what it is for
OPTIONAL = {
    "symengine": ("fast", "faster exact derivatives"),
    "matplotlib": ("plots", "plots in Markdown reports"),
}


def optional(module: str, purpose: str | None = None) -> ModuleType:
    """``module``, or :class:`MissingDependency` naming the extra that installs it."""
    extra, default_purpose = OPTIONAL[module]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(
            f"{purpose or default_purpose} needs {module}, which is not installed: "
            f"pip install 'diffcheck[{extra}]'") from None


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def versions(optional_backends: bool = False) -> dict[str, str]:
    """The versions of diffcheck, torch, SymPy, mpmath, NumPy and Python (and, when asked,
    of the optional backends, ``None`` when absent)."""
    import sympy
    import torch

    found = {"diffcheck": __version__, "torch": torch.__version__, "sympy": sympy.__version__,
             "mpmath": _version("mpmath"), "numpy": _version("numpy"),
             "python": platform.python_version()}
    if optional_backends:
        found["platform"] = platform.platform()
        for module in OPTIONAL:
            found[module] = _version(module)
        found["hypothesis"] = _version("hypothesis")
    return found


def examples_dir() -> Path:
    """The folder of example cases shipped with the package (the repository's ``cases/``).

    An installed diffcheck has them as ``diffcheck.cases``, a namespace package (no
    ``__init__.py``: a folder of YAML files); a source checkout run without installing
    (``PYTHONPATH=.``) has them in ``cases/`` beside the package."""
    try:
        spec = importlib.util.find_spec("diffcheck.cases")
    except ModuleNotFoundError:
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        if Path(location).is_dir():
            return Path(location)
    checkout = Path(__file__).resolve().parents[1] / "cases"
    if checkout.is_dir():
        return checkout
    raise MissingDependency("the example cases are not installed with this diffcheck; reinstall it with pip")


def example_files() -> list[Path]:
    """Every example case file, relative to :func:`examples_dir`, sorted."""
    root = examples_dir()
    return sorted(p.relative_to(root) for p in root.rglob("*") if p.suffix in (".yaml", ".yml"))


#: warnings attributed to torch's own modules: torch talking about itself (deprecations of
#: its internals, notes on its kernels), which a diffcheck user can do nothing about
TORCH_MODULES = r"torch(\.|$)"


def quiet_torch_warnings() -> None:
    """Keep torch's own warnings off the user's console (the CLI calls it once; forked
    workers inherit it). Warnings raised by the user's code are left alone."""
    warnings.filterwarnings("ignore", module=TORCH_MODULES)
    # attributed to the caller by stacklevel, so matched by text as well
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script(_method)?` is deprecated")
    # torch's C++ warnings (TORCH_WARN: "a performance drop because we have not yet implemented
    # the batching rule for …") are attributed to the Python line that called torch
    warnings.filterwarnings("ignore", message=r"(?s).*\(Triggered internally at ")
