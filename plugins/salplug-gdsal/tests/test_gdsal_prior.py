"""The real prior: MobileNetV2's gradients find the cat, and the component keeps the salplug contract."""

import torch
from skimage import data

import salplug
from salplug_gdsal import GradientDescentSaliency


def test_gdsal_chelsea_cat_above_border():
    image = torch.from_numpy(data.chelsea()).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():  # as chains and eval call it
        out = GradientDescentSaliency()(image)
    assert out.shape == (1, 1, *image.shape[-2:]) and out.dtype == torch.float32
    saliency = out[0, 0]
    strip = 20
    border = torch.cat([saliency[:strip].ravel(), saliency[-strip:].ravel(),
                        saliency[:, :strip].ravel(), saliency[:, -strip:].ravel()])
    cat = saliency[60:250, 100:300]  # the cat's head and body in the 300×451 photo
    assert cat.mean() > border.mean() + 0.1


def test_gdsal_blank_image_is_finite():
    out = GradientDescentSaliency(steps=2, size=64)(torch.full((1, 3, 30, 40), 0.5))
    assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1


def test_gdsal_is_registered():
    assert "gdsal" in salplug.list_components("prior")
