"""The gradient step on a tiny random classifier: floor rule, clamp term, batch independence."""

import pytest
import torch
from torch import nn

from salplug_gdsal.prior import descend, objective


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.Tanh(), nn.Conv2d(8, 8, 3, padding=1), nn.Tanh(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(128, 10),
    ).eval()
    return model.requires_grad_(False)


def test_gdsal_objective_is_class_logit_plus_clamp():
    start = torch.tensor([[1.0, 3.0, 0.0]])
    logits = torch.tensor([[2.0, 2.5, -1.0]])
    label = torch.tensor([1])
    assert objective(logits, start, label, gamma=2.0).item() == pytest.approx(2.5 + 2.0 * (1.0 + 1.0))


def test_gdsal_one_step_changes_only_where_gradient_is_positive(tiny):
    x = torch.rand(1, 3, 20, 24, generator=torch.Generator().manual_seed(1))
    probe = x.clone().requires_grad_(True)
    logits = tiny(probe)
    (grad,) = torch.autograd.grad(objective(logits, logits.detach(), logits.argmax(1), 1.0).sum(), probe)
    after = descend(tiny, x, steps=1, step_size=0.5, gamma=1.0)
    positive = grad > 0
    assert positive.any() and (~positive).any()
    assert torch.equal(after[~positive], x[~positive])
    assert torch.allclose(x[positive] - after[positive], 0.5 * grad[positive], atol=1e-7)
    assert not any(p.requires_grad for p in tiny.parameters())


def test_gdsal_batch_of_two_equals_each_alone(tiny):
    x = torch.rand(2, 3, 20, 24, generator=torch.Generator().manual_seed(2))
    both = descend(tiny, x, steps=5, step_size=0.5, gamma=1.0)
    for i in range(2):
        alone = descend(tiny, x[i : i + 1], steps=5, step_size=0.5, gamma=1.0)
        assert torch.allclose(both[i : i + 1], alone, atol=1e-4)
    assert (both <= x).all() and (both < x).any()
