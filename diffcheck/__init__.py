"""diffcheck: check automatic differentiation against exact mathematics.

The public surface: :func:`check_case` (one case), :func:`run` (many files), the loader
functions, and the plain result types.
"""

__version__ = "0.1.0"

from .case import Case, Check, Tolerance, Variable  # noqa: E402
from .pipeline import CheckOptions, check_case  # noqa: E402
from .errors import CaseFileError, DiffcheckError  # noqa: E402
from .results import CaseReport, Result, RunReport  # noqa: E402

__all__ = ["Case", "Check", "Tolerance", "Variable", "CheckOptions", "check_case", "CaseFileError",
           "DiffcheckError", "CaseReport", "Result", "RunReport", "__version__"]
