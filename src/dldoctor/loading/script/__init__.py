"""Script mode: run an unmodified training script, watch its own loop, build the spec from it.

``watch_script`` runs the script under the watcher (:mod:`.watch`), ``build_spec`` turns
what it captured into the spec the staged checks run on (:mod:`.to_spec`), and the
:class:`~.record.WatchedLoop` is what the watched-loop checks judge.
"""

from dldoctor.loading.script.mode import defines_spec, script_mode
from dldoctor.loading.script.record import NoGradPass, OptimizerInfo, StepRecord, WatchedLoop

__all__ = ["NoGradPass", "OptimizerInfo", "StepRecord", "WatchedLoop", "defines_spec", "script_mode"]
