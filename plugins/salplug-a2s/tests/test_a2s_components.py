"""The A2S priors keep the prior contract, load their shipped checkpoints and follow the sign rule."""

import pytest
import torch

from salplug.components import shipped_checkpoint
from salplug_a2s import A2S, A2SStage1
from salplug_a2s.stage1 import SHIPPED_FILE as STAGE1_FILE, centred_sum, foreground_sign
from salplug_a2s.stage2 import SHIPPED_FILE as STAGE2_FILE

SMALL = {"checkpoint": None, "backbone_weights": None, "size": 64, "channels": 8}


@pytest.mark.parametrize("cls", [A2SStage1, A2S], ids=lambda c: c.name)
def test_a2s_prior_any_input_size(cls):
    prior = cls(**SMALL)
    image = torch.rand(2, 3, 37, 90, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = prior(image)
    assert out.shape == (2, 1, 37, 90) and out.dtype == torch.float32
    assert 0 <= float(out.min()) and float(out.max()) <= 1


@pytest.mark.parametrize(("cls", "filename"), [(A2SStage1, STAGE1_FILE), (A2S, STAGE2_FILE)], ids=["stage1", "stage2"])
def test_a2s_shipped_checkpoint_loads_with_its_architecture(cls, filename):
    assert shipped_checkpoint("salplug_a2s", filename).is_file()
    prior = cls(backbone_weights=None)  # the encoder's weights come from the tag; random is enough to check loading
    card = prior.card
    assert "no mask" in card["labels"] and card["command"].startswith("salplug train")
    assert "duts-tr" in str(card["data"]) and "sod-dev" not in str(card["data"]), "trained on DUTS-TR photos, never sod-dev"
    assert prior.arch["size"] == 320 and prior.arch["channels"] == 64
    out = prior(torch.rand(1, 3, 41, 53))
    assert out.shape == (1, 1, 41, 53)


def test_a2s_sign_rule_inverts_maps_with_mostly_positive_pixels():
    theta = torch.full((2, 1, 10, 10), -1.0)
    theta[0, :, :7] = 1.0  # 70% positive: the positive side is background
    theta[1, :, :3] = 1.0  # 30% positive: kept
    sign = foreground_sign(theta)
    assert sign.view(-1).tolist() == [-1.0, 1.0]
    corrected = theta * sign
    assert float((corrected[0] > 0).float().mean()) == pytest.approx(0.3)
    assert float((corrected[1] > 0).float().mean()) == pytest.approx(0.3)


def test_a2s_activation_map_is_the_channel_sum_of_centred_features():
    features = torch.randn(2, 5, 6, 7, generator=torch.Generator().manual_seed(1))
    theta = centred_sum(features)
    expected = sum(features[:, c] - features[:, c].mean(dim=(1, 2), keepdim=True) for c in range(5))[:, None]
    torch.testing.assert_close(theta, expected)
    assert theta.mean(dim=(1, 2, 3)).abs().max() < 1e-5


def test_a2s_stage1_output_obeys_the_sign_rule():
    prior = A2SStage1(**SMALL)
    image = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        theta = prior.activation(image)
    assert ((theta > 0).float().mean(dim=(1, 2, 3)) <= 0.5).all()


def test_a2s_stage1_resaved_keeps_a_non_default_architecture(tmp_path):
    """A head trained at fuse stride 4 and 16 channels rebuilds as such from its file, not at the defaults."""
    trained = A2SStage1(checkpoint=None, backbone_weights=None, fuse_stride=4, channels=16)
    path = trained.save_weights(tmp_path / "s4.pt")
    again = A2SStage1(checkpoint=str(path), backbone_weights=None)
    assert again.arch == trained.arch and again.arch["fuse_stride"] == 4 and again.arch["channels"] == 16
    resaved = A2SStage1(checkpoint=str(again.save_weights(tmp_path / "again.pt")), backbone_weights=None)
    assert resaved.arch == trained.arch
