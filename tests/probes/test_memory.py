"""The memory probe: the live-bytes count, the saved activations, the optimiser state,
the linear model in the batch size, and the real probe's search."""

import pytest
import torch
from torch import nn

from dldoctor.core.context import default_forward
from dldoctor.probes.resources.memory_model import (
    LiveBytes,
    MemoryModel,
    OneSampleDoesNotFit,
    find_max_batch,
    measure_memory,
    measurement_sizes,
    optimizer_state_bytes,
    resize_batch,
    unique_bytes,
)

H = 32


def mlp():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, H), nn.ReLU(), nn.Linear(H, 3))


def batch(n=16):
    g = torch.Generator().manual_seed(0)
    return torch.randn(n, 8, generator=g), torch.randint(0, 3, (n,), generator=g)


def measure(model, optimizer, b=None, **kwargs):
    return measure_memory(model, optimizer, b or batch(), default_forward, nn.CrossEntropyLoss(), **kwargs)


def param_bytes(model):
    return sum(p.numel() * p.element_size() for p in model.parameters())


def test_live_bytes_counts_new_storages_once_and_subtracts_frees():
    x = torch.randn(1000)
    with LiveBytes() as meter:
        y = x * 2                    # 4000 new bytes
        v = y.view(10, 100)          # a view allocates nothing
        y.add_(1)                    # in place allocates nothing
        z = x + 1                    # 4000 more: peak 8000
        del z                        # freed
        w = torch.empty(500)         # 2000: live 6000
    meter.close()
    assert meter.peak == 8000
    assert meter.live == 6000
    del v, w


def test_parameters_gradients_and_state_per_optimizer():
    model = mlp()
    p = param_bytes(model)
    adam = measure(model, torch.optim.Adam(model.parameters()))
    assert adam.param_bytes == p
    assert adam.grad_bytes == p
    # Two buffers per parameter, plus one scalar step counter per parameter tensor.
    assert 2 * p <= adam.optimizer_state_bytes <= 2 * p + 8 * 4
    model = mlp()
    assert measure(model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)).optimizer_state_bytes == p
    model = mlp()
    assert measure(model, torch.optim.SGD(model.parameters(), lr=0.1)).optimizer_state_bytes == 0


def test_saved_activations_are_deduplicated_and_exclude_parameters_and_input():
    model = mlp()
    mm = measure(model, torch.optim.SGD(model.parameters(), lr=0.1))
    # Linear saves its input (the batch, counted apart) and a view of its weight
    # (a parameter); ReLU saves its output, which the second Linear saves again;
    # cross-entropy saves its log-softmax (3 floats) and the targets (the batch).
    assert mm.saved_bytes_per_sample == H * 4 + 3 * 4
    assert mm.largest_activation is not None and mm.largest_activation.path == "model[1]"
    assert mm.input_bytes_per_sample == 8 * 4 + 8  # float features and an int64 label
    assert mm.largest_layer.path == "model[0]"  # 8*32+32 floats beat 32*3+3


def test_frozen_parameters_get_no_gradient_bytes():
    model = mlp()
    for p in model[0].parameters():
        p.requires_grad_(False)
    mm = measure(model, torch.optim.Adam([p for p in model.parameters() if p.requires_grad]))
    assert mm.grad_bytes == param_bytes(model[2])
    assert mm.param_bytes == param_bytes(model)


def test_prediction_matches_the_profiler_at_a_batch_it_never_ran():
    """The peak of two real training steps at batch 256, counted by torch's profiler."""
    from torch.profiler import ProfilerActivity, profile

    def make():
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(8, 256), nn.ReLU(), nn.Linear(256, 256), nn.Tanh(), nn.Linear(256, 3))

    model = make()
    mm = measure(model, torch.optim.Adam(model.parameters()), batch(32))
    pool = batch(256)
    model = make()
    optimizer = torch.optim.Adam(model.parameters())
    loss_fn = nn.CrossEntropyLoss()
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        for _ in range(2):
            x, y = pool[0].clone(), pool[1].clone()
            optimizer.zero_grad()
            out = model(x)
            loss = loss_fn(out, y)
            loss.backward()
            optimizer.step()
            del x, y, out, loss
    live = peak = 0
    for _, nbytes in sorted((e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events()
                            if e.name() == "[memory]"):
        live += nbytes
        peak = max(peak, live)
    assert mm.step_bytes(256) == pytest.approx(peak, rel=0.05)


def test_hooks_are_removed_and_the_batch_is_untouched():
    model = mlp()
    b = batch()
    before = b[0].clone()
    measure(model, torch.optim.Adam(model.parameters()), b)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert torch.equal(b[0], before)


def test_a_forward_that_only_takes_the_spec_batch_size_is_measured_at_it_alone():
    model = mlp()
    fixed = lambda m, b: (m(b[0].view(16, 8)), b[1])  # noqa: E731 - hard-codes the batch size
    mm = measure_memory(model, torch.optim.SGD(model.parameters(), lr=0.1), batch(16), fixed,
                        nn.CrossEntropyLoss())
    assert mm.measured_sizes == (16,)
    assert mm.pass_bytes_per_sample > 0


def test_one_sample_that_does_not_fit_raises():
    def oom(model, b):
        raise MemoryError("simulated")

    model = mlp()
    with pytest.raises(OneSampleDoesNotFit) as info:
        measure_memory(model, torch.optim.SGD(model.parameters(), lr=0.1), batch(), oom, nn.CrossEntropyLoss(),
                       step_ran=False)
    assert info.value.size == 1
    assert info.value.param_bytes == param_bytes(model)


def test_measurement_sizes():
    assert measurement_sizes(64, True) == (32, 64)
    assert measurement_sizes(1, True) == (1,)
    assert measurement_sizes(512, False) == (1, 2)


def test_max_batch_inverts_the_linear_model():
    mm = MemoryModel(
        device="cpu", batch_size=64, measured_sizes=(32, 64), param_bytes=1000, grad_bytes=1000,
        optimizer_name="Adam", optimizer_state_bytes=2000, optimizer_state_measured=True,
        input_bytes_per_sample=10, saved_bytes=(3200, 6400), saved_bytes_per_sample=100, pass_fixed_bytes=1000,
        pass_bytes_per_sample=200, optimizer_step_bytes=5000, held_bytes_per_sample=10, largest_layer=None,
        largest_activation=None)
    assert mm.peak_bytes(10) == 1000 + max(2000 + 1000 + 2000, 5000 + 100)
    n = mm.max_batch(100_000)
    assert mm.peak_bytes(n) <= 100_000 < mm.peak_bytes(n + 1)
    assert mm.max_batch(5000) == 0  # the optimiser step alone does not fit
    assert mm.peak_in(1) == "optimiser step" and mm.peak_in(100) == "forward/backward"


def test_resize_batch_cuts_and_repeats_the_batch_dimension_only():
    x = torch.arange(12.0).view(4, 3)
    other = torch.ones(3)
    out = resize_batch({"x": x, "w": other, "tag": "a"}, 4, 2)
    assert out["x"].shape == (2, 3) and out["w"] is other and out["tag"] == "a"
    assert out["x"].untyped_storage().data_ptr() != x.untyped_storage().data_ptr()
    grown = resize_batch((x, torch.arange(4)), 4, 10)
    assert grown[0].shape == (10, 3) and grown[1].tolist() == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]


def test_unique_bytes_counts_shared_storage_once():
    w = torch.randn(10, 10)
    assert unique_bytes([w, w.t(), w[0]]) == 400
    opt_state = torch.optim.SGD([nn.Parameter(w.clone())], lr=0.1, momentum=0.5)
    assert optimizer_state_bytes(opt_state) == 0


def test_real_probe_finds_the_limit_from_the_prediction():
    limit = 1000

    def forward(model, b):
        if len(b[0]) > limit:
            raise MemoryError("simulated out of memory")
        return model(b[0]), b[1]

    model = mlp()
    found = find_max_batch(model, torch.optim.SGD(model.parameters(), lr=0.1), batch(16), forward,
                           nn.CrossEntropyLoss(), start=900, max_trials=12, tolerance=0.02)
    assert found.largest_fit <= limit < found.smallest_fail
    assert found.smallest_fail - found.largest_fit <= 0.02 * found.largest_fit + 1
    assert found.trials[0] == (900, True) and found.stopped == "converged"

    model = mlp()
    found = find_max_batch(model, torch.optim.SGD(model.parameters(), lr=0.1), batch(16), forward,
                           nn.CrossEntropyLoss(), start=4000, max_trials=12, tolerance=0.02)
    assert found.largest_fit <= limit < found.smallest_fail
    assert found.trials[0] == (4000, False)


def test_real_probe_stops_at_its_cap_and_on_other_errors():
    model = mlp()
    found = find_max_batch(model, torch.optim.SGD(model.parameters(), lr=0.1), batch(16), default_forward,
                           nn.CrossEntropyLoss(), start=100, max_batch=64)
    assert found.largest_fit == 64 and found.stopped == "cap"

    def broken(model, b):
        if len(b[0]) > 4:
            raise ValueError("not a memory problem")
        return model(b[0]), b[1]

    found = find_max_batch(model, torch.optim.SGD(model.parameters(), lr=0.1), batch(16), broken,
                           nn.CrossEntropyLoss(), start=100)
    assert found.largest_fit == 0 and "ValueError" in found.stopped
