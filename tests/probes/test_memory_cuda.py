"""The memory probes on a real GPU: out-of-memory errors raised by CUDA itself, not simulated.

Marked ``cuda``: skipped without a CUDA device (tests/conftest.py). Run them with
``pytest -m cuda`` on a machine that has one.
"""

import pytest
import torch
from torch import nn

pytestmark = pytest.mark.cuda

#: Bytes each sample of the forward below holds on the device: the batch that fits is
#: about the free memory over this.
CHUNK = 1 << 30


def _hungry_forward(model, b):
    """The model's outputs, plus CHUNK bytes of device memory per sample kept alive by the graph."""
    pad = torch.empty(len(b[0]) * CHUNK, dtype=torch.uint8, device="cuda")
    return model(b[0]) + pad[:1].float() * 0, b[1]


def test_the_real_probe_meets_a_real_cuda_out_of_memory_and_releases_it():
    from dldoctor.probes.resources.memory_model import find_max_batch

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Linear(32, 3)).cuda()
    batch = (torch.randn(4, 8, device="cuda"), torch.randint(0, 3, (4,), device="cuda"))
    free, total = torch.cuda.mem_get_info()
    before = torch.cuda.memory_allocated()
    found = find_max_batch(model, torch.optim.SGD(model.parameters(), lr=0.1), batch, _hungry_forward,
                           nn.CrossEntropyLoss(), start=max(1, free // CHUNK // 2), max_trials=16,
                           tolerance=0.02)
    assert found.stopped in ("converged", "trials"), found  # an OOM is a size that does not fit, not an error
    assert found.smallest_fail is not None and 1 <= found.largest_fit < found.smallest_fail
    assert found.largest_fit * CHUNK <= total
    assert any(not fit for _, fit in found.trials)
    assert torch.cuda.memory_allocated() - before < CHUNK  # every trial's memory was released


def test_the_memory_model_check_on_cuda_reads_the_devices_free_memory(tmp_path):
    from dldoctor.core.runner import RunOptions, diagnose
    from dldoctor.core.stage import Stage
    from tests.conftest import REPO

    diagnosis = diagnose(RunOptions(target=str(REPO / "examples" / "digits" / "train.py"), device="cuda",
                                    stages=(Stage.RUN,), select=("memory-model",)))
    assert diagnosis.device.startswith("cuda"), diagnosis.device
    assert [c.status.value for c in diagnosis.checks if c.name == "memory-model"] == ["passed"], diagnosis.checks
    assert diagnosis.status == "healthy", [f"{f.id}: {f.title}" for f in diagnosis.diagnoses]
