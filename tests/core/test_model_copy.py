"""copy_model: the same copy as copy.deepcopy, for the model shapes users write."""

import copy

import pytest
import torch
from torch import nn

from dldoctor.core.model_copy import copy_model


class Tied(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(20, 8)
        self.lstm = nn.LSTM(8, 8, batch_first=True)
        self.head = nn.Linear(8, 20, bias=False)
        self.head.weight = self.embed.weight  # weight tying
        self.norm = nn.BatchNorm1d(8)
        self.register_buffer("mask", torch.ones(8), persistent=False)
        self.extra = [nn.Parameter(torch.ones(2)), {"scale": torch.tensor(2.0)}]  # plain containers
        self.alias = self.extra  # the same list twice
        self.frozen = nn.Linear(8, 8)
        self.frozen.requires_grad_(False)
        self.frozen.eval()

    def forward(self, x):
        h, _ = self.lstm(self.embed(x))
        h = self.norm(h[:, -1] * self.mask) * self.extra[1]["scale"]
        return self.head(self.frozen(h))


class Slotted(nn.Linear):
    __slots__ = ("note",)


def models():
    torch.manual_seed(0)
    hooked = nn.Sequential(nn.Linear(4, 4), nn.ReLU())
    hooked[0].register_forward_hook(lambda m, a, o: o * 2)
    return {
        "tied lstm": (Tied(), torch.randint(0, 20, (3, 5))),
        "transformer": (nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2),
                        torch.randn(2, 5, 8)),
        "parametrized": (nn.utils.parametrizations.weight_norm(nn.Linear(4, 3)), torch.randn(2, 4)),
        "hooked": (hooked, torch.randn(2, 4)),
        "slots": (Slotted(4, 2), torch.randn(2, 4)),
    }


@pytest.mark.parametrize("name", list(models()))
def test_copy_model_matches_deepcopy(name):
    model, x = models()[name]
    model.eval()
    fast, slow = copy_model(model), copy.deepcopy(model)
    assert [(n, type(m)) for n, m in fast.named_modules()] == [(n, type(m)) for n, m in slow.named_modules()]
    assert [(n, m.training) for n, m in fast.named_modules()] == [(n, m.training) for n, m in model.named_modules()]
    for (n, a), (_, b), (_, o) in zip(fast.state_dict().items(), slow.state_dict().items(),
                                      model.state_dict().items()):
        assert torch.equal(a, b), n
        assert a.data_ptr() != o.data_ptr(), f"{n} shares memory with the original"
    assert [(n, p.requires_grad) for n, p in fast.named_parameters()] == \
        [(n, p.requires_grad) for n, p in model.named_parameters()]
    with torch.no_grad():
        assert torch.equal(fast(x), model(x))


def test_shared_objects_stay_shared_and_apart_from_the_original():
    model = models()["tied lstm"][0]
    fast = copy_model(model)
    assert fast.head.weight is fast.embed.weight and fast.head.weight is not model.embed.weight
    assert fast.alias is fast.extra and fast.extra is not model.extra
    assert fast.extra[0] is not model.extra[0] and torch.equal(fast.extra[0], model.extra[0])
    lstm_params = {id(p) for p in fast.lstm.parameters()}
    assert {id(w) for w in fast.lstm._flat_weights} == lstm_params  # the LSTM runs on its own copies
    with torch.no_grad():
        fast.embed.weight.add_(1.0)
        fast.norm.running_mean.add_(1.0)
    assert not torch.equal(fast.embed.weight, model.embed.weight)
    assert torch.equal(model.norm.running_mean, torch.zeros(8))


def test_training_the_copy_leaves_the_original_alone():
    model, x = models()["tied lstm"]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fast = copy_model(model)
    fast.train()
    optimizer = torch.optim.SGD(fast.parameters(), lr=0.1)
    fast(x).sum().backward()
    optimizer.step()
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())


def test_what_deepcopy_cannot_copy_fails_the_same_way():
    # The old weight_norm keeps a computed (non-leaf) weight as a plain attribute.
    with pytest.warns(FutureWarning):
        model = nn.utils.weight_norm(nn.Linear(4, 3))
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy.deepcopy(model)
    with pytest.raises(RuntimeError, match="graph leaves"):
        copy_model(model)
