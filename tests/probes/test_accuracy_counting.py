"""How the short training run counts classification hits: per sample, only targets the loss counts."""

import torch

from dldoctor.probes.accuracy import correct_share


def test_one_label_per_sample():
    assert correct_share(torch.tensor([[2.0, 1.0], [0.0, 3.0]]), torch.tensor([0, 0])) == (1.0, 2.0)


def test_a_label_per_position_counts_each_sample_once_and_skips_ignored_targets():
    logits = torch.zeros(2, 3, 3)
    logits[:, 1] = 1.0  # predicts class 1 everywhere
    targets = torch.tensor([[0, 1, -100], [1, 1, 1]])
    assert correct_share(logits, targets, ignore_index=-100) == (1.5, 2.0)  # 1/2 + 3/3, padding left out
    assert correct_share(logits, torch.full((2, 3), -100), ignore_index=-100) == (0.0, 0.0)
    assert correct_share(logits, targets) == (1.5, 2.0)  # a negative index is never a class


def test_multi_label_targets_are_scored_per_label():
    logits = torch.tensor([[1.0, -1.0], [2.0, -3.0]])
    assert correct_share(logits, torch.tensor([[1.0, 0.0], [1.0, 1.0]])) == (1.5, 2.0)


def test_soft_targets_are_scored_by_their_most_probable_class():
    probs = torch.tensor([[0.7, 0.3], [0.2, 0.8]])
    assert correct_share(torch.tensor([[3.0, 0.0], [3.0, 0.0]]), probs) == (1.0, 2.0)


def test_one_binary_output():
    assert correct_share(torch.tensor([0.9, 0.1, 0.7]), torch.tensor([1.0, 0.0, 0.0])) == (2.0, 3.0)
    assert correct_share(torch.tensor([[2.0], [-1.0]]), torch.tensor([[1.0], [1.0]])) == (1.0, 2.0)
