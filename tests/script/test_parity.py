"""Bugs that exist in both forms get the same top-1 ID in script mode as in spec mode.

Each file in ``parity/`` is a spec-zoo case of ``examples/bugs`` (a bug in the model, the
data, the loss or the optimizer's settings) written again as an ordinary training script,
without ``dldoctor_spec``: the same model, data, loss and optimizer, trained by a
module-level loop or a ``main()`` with argparse. Script mode watches that loop and builds
the spec from it; its top-ranked error or warning must be the one spec mode gives the zoo
case, and both must be the case's ``# EXPECT``. Each case runs the stages its diagnosis
needs, as the zoo test does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO, diagnose_file
from tests.test_examples import declared_stages, expectation, stages_for

PARITY = Path(__file__).resolve().parent / "parity"

#: Script in parity/ -> the spec-zoo case it rewrites.
CASES = {
    "softmax_into_cross_entropy": "probs_cnn_softmax_crossentropy",  # model: softmax before cross-entropy
    "raw_pixels_cnn": "scale_cnn_raw_pixels",  # data: 0-255 pixels, never rescaled
    "broadcast_mse_regression": "broadcast_mlp_diabetes_mse",  # loss: (N, 1) output against (N,) target
    "lr_too_high_sgd": "fit_lr_high_mlp_sgd",  # optimizer: SGD at lr 5
}


def alarms(diagnosis) -> list[str]:
    return [f"{f.id}: {f.title}" for f in diagnosis.diagnoses if f.severity.value in ("error", "warning")]


def top_id(ranked: list[str]) -> str | None:
    return ranked[0].split(":")[0] if ranked else None


@pytest.mark.slow
@pytest.mark.parametrize("script", CASES, ids=list(CASES))
def test_script_mode_names_the_bug_spec_mode_names(script):
    from dldoctor.loading.script import defines_spec

    spec_file = REPO / "examples" / "bugs" / f"{CASES[script]}.py"
    script_file = PARITY / f"{script}.py"
    assert not defines_spec(script_file), "a parity script must run in script mode"
    expect, _ = expectation(spec_file)
    stages = declared_stages(spec_file) or stages_for(expect)

    spec_mode = diagnose_file(spec_file, stages=stages)
    script_mode = diagnose_file(script_file, stages=stages)

    assert "watched_loop" in script_mode.reports and "watched_loop" not in spec_mode.reports
    spec_ranked, script_ranked = alarms(spec_mode), alarms(script_mode)
    assert top_id(spec_ranked) == expect, spec_ranked
    assert top_id(script_ranked) == top_id(spec_ranked), {"script mode": script_ranked, "spec mode": spec_ranked}
