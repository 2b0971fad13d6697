"""The cheap tensor summaries that probe hooks take on every module output and gradient."""

import math

import pytest
import torch

from dldoctor.probes.forward_trace import act_stats
from dldoctor.runtime.tensors import all_finite


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_all_finite_sees_one_bad_value_anywhere(bad, dtype):
    x = torch.randn(4, 300).to(dtype)
    assert all_finite(x)
    for index in [(0, 0), (2, 157), (3, 299)]:
        y = x.clone()
        y[index] = bad
        assert not all_finite(y)


def test_all_finite_other_tensors():
    assert all_finite(torch.arange(10))  # integers cannot hold NaN
    assert all_finite(torch.empty(0))
    assert not all_finite(torch.tensor([1 + 1j, complex(float("nan"), 0)]))
    sparse = torch.sparse_coo_tensor(torch.tensor([[0, 5]]), torch.tensor([1.0, float("inf")]), (8,),
                                     check_invariants=True)
    assert not all_finite(sparse)


def _reference(x: torch.Tensor):
    finite = x[torch.isfinite(x)]
    return (float(finite.min()), float(finite.max()), float((finite == 0).float().mean()),
            1 - finite.numel() / x.numel())


def test_act_stats_match_their_definition():
    torch.manual_seed(0)
    x = torch.relu(torch.randn(64, 16, 8, 8))
    s = act_stats(x)
    assert (s.min, s.max, s.frac_zero, s.frac_nonfinite) == pytest.approx(_reference(x))
    assert s.numel == x.numel() and 0.4 < s.frac_zero < 0.6


def test_act_stats_of_a_tensor_with_nan_describe_its_finite_values():
    x = torch.randn(32, 10)
    x[3, 4] = float("nan")
    x[7, 1] = float("-inf")
    x[0, 0] = 0.0
    s = act_stats(x)
    assert (s.min, s.max, s.frac_zero, s.frac_nonfinite) == pytest.approx(_reference(x))
    assert s.frac_nonfinite == pytest.approx(2 / 320)
    all_nan = act_stats(torch.full((3, 3), float("nan")))
    assert all_nan.frac_nonfinite == 1.0 and math.isnan(all_nan.min)


def test_act_stats_skip_what_is_not_a_float_tensor():
    assert act_stats(torch.arange(5)) is None
    assert act_stats(torch.empty(0)) is None
    assert act_stats("not a tensor") is None
