"""The JSON Schema (draft 2020-12) of the JSON report, shipped with the package.

``report.schema.json`` describes what ``--format json`` writes
(:meth:`dldoctor.core.diagnosis.Diagnosis.to_dict`); docs/json-report.md explains its
fields. Reading it needs only the standard library; validating against it needs a
JSON Schema library such as ``jsonschema``.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

__all__ = ["SCHEMA_FILE", "report_schema"]

#: The schema's file name inside this package.
SCHEMA_FILE = "report.schema.json"


def report_schema() -> dict[str, Any]:
    """The JSON report's schema, as a fresh dict (safe to modify)."""
    text = resources.files("dldoctor.schema").joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
