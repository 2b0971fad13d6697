"""``dldoctor run``: every stage, ranked diagnosis."""

from __future__ import annotations

from dldoctor.cli import common as c
from dldoctor.cli.diagnose_cmd import diagnose_and_report


@c.diagnosing_command
def run(common: c.CommonOptions) -> None:
    """Run every check on TARGET and print the ranked diagnosis."""
    diagnose_and_report(common, command="run")
