"""JSON output, exactly the contract's fields (plus a few documented additions)."""

from __future__ import annotations

import json

from dldoctor.core.diagnosis import Diagnosis


def render(diagnosis: Diagnosis) -> str:
    return json.dumps(diagnosis.to_dict(), indent=2, sort_keys=False)
