"""dldoctor: a command-line doctor for PyTorch training runs.

The public API is small and does not import torch:

    Spec      what ``dldoctor_spec()`` may return (a plain dict works too)
    Check     the base class of every check, built-in or third-party
    Finding   one conclusion of a check
    Severity  info, warning, error
    Stage     the ordered stages of the method
"""

__version__ = "0.1.0"

from dldoctor.core.check import Check
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage
from dldoctor.loading.spec import Spec

__all__ = ["Check", "Finding", "Severity", "Spec", "Stage", "__version__"]
