"""One rule for broken entrypoints: whatever the user's spec, factories or loaders do
wrong exits 2, whichever factory or batch shows it."""

from __future__ import annotations

import pytest

from tests.conftest import HEALTHY_BODY, run_cli

CASES = {
    "optimizer factory returns None": HEALTHY_BODY.replace(
        '"optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),', '"optimizer": lambda p: None,'),
    "model factory returns None": HEALTHY_BODY.replace('"model": Net,', '"model": lambda: None,'),
    "optimizer factory raises": HEALTHY_BODY.replace(
        '"optimizer": lambda p: torch.optim.Adam(p, lr=1e-2),', '"optimizer": lambda p: torch.optim.Adam(p, lr=-1.0),'),
}


@pytest.mark.parametrize("body", CASES.values(), ids=list(CASES))
def test_a_broken_factory_exits_2_with_a_message_and_no_dldoctor_traceback(make_project, body):
    proc = run_cli("run", make_project(body), "--profile", "quick")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "dldoctor: error:" in proc.stderr
    assert "site-packages/dldoctor" not in proc.stderr and "src/dldoctor" not in proc.stderr
