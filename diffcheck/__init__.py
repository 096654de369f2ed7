"""diffcheck: check automatic differentiation against exact mathematics.

The public API is what this module exports (``diffcheck.__all__``): check a Python function
(:func:`check_function`, :func:`assert_function`), one case (:func:`check_case`), or many
case files (:func:`run` with :class:`RunOptions`); read case files (:func:`load_text`,
:func:`load_paths`); the result types and the errors. The submodules are internal and may
change between versions.
"""

from .version import __version__

from .case import Case, Check, Tolerance, Variable  # noqa: E402
from .errors import CaseFileError, CheckFailed, DiffcheckError, Location  # noqa: E402
from .pipeline import CheckOptions, check_case  # noqa: E402
from .results import CaseReport, Result, RunReport, WorstPoint  # noqa: E402
from .loader import load_file, load_paths, load_text  # noqa: E402
from .runner import RunOptions, run  # noqa: E402
from .api import FunctionReport, assert_function, check_function  # noqa: E402

__all__ = [
    "check_function", "assert_function", "FunctionReport",
    "check_case", "CheckOptions", "run", "RunOptions",
    "load_text", "load_file", "load_paths",
    "Case", "Check", "Tolerance", "Variable",
    "CaseReport", "Result", "RunReport", "WorstPoint",
    "DiffcheckError", "CaseFileError", "CheckFailed", "Location",
    "__version__",
]
