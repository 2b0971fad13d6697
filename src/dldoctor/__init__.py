"""dldoctor: a command-line doctor for PyTorch training runs.

The public API is small and does not import torch:

    Spec      what ``dldoctor_spec()`` may return (a plain dict works too)
    Check     the base class of every check, built-in or third-party
    Finding   one conclusion of a check
    Severity  info, warning, error
    Stage     the ordered stages of the method
    diagnose  run dldoctor on a target from Python and get the ranked Diagnosis

Check authors (plugins) import from :mod:`dldoctor.api`: the typed ``CheckContext``,
``DiagnosisInfo`` for their own diagnosis IDs, and the config rules.
"""

__version__ = "0.1.0"

from dldoctor.core.check import Check
from dldoctor.core.finding import Finding
from dldoctor.core.severity import Severity
from dldoctor.core.stage import Stage
from dldoctor.loading.spec import Spec

__all__ = ["Check", "Finding", "Severity", "Spec", "Stage", "__version__", "diagnose"]


def diagnose(target=None, **options):
    """Run dldoctor on ``target`` (a training file) and return the ranked ``Diagnosis``.

    Keyword options are those of :class:`dldoctor.core.runner.RunOptions` (``spec``,
    ``profile``, ``seed``, ``device``, ``select``, ``ignore``, ``stages``, ...). The
    caller's ``random``, NumPy and torch random states are the same after the call as
    before it, and the user's objects are never trained. A broken entrypoint comes
    back as a diagnosis whose ``exit_code()`` is 2, not as an exception; a bad option
    raises :class:`dldoctor.core.errors.DldoctorError`.
    """
    from dldoctor.core.errors import DldoctorError
    from dldoctor.core.runner import RunOptions
    from dldoctor.core.runner import diagnose as _diagnose
    from dldoctor.core.stage import Stage

    options.setdefault("device", "auto")
    if options.get("stages") is not None:
        stages = (options["stages"],) if isinstance(options["stages"], (str, Stage)) else options["stages"]
        try:
            options["stages"] = tuple(s if isinstance(s, Stage) else Stage.parse(str(s)) for s in stages)
        except ValueError as exc:
            raise DldoctorError(str(exc)) from None
    for key in ("select", "ignore"):
        if isinstance(options.get(key), str):
            options[key] = (options[key],)
    return _diagnose(RunOptions(target=None if target is None else str(target), **options))
