"""Pseudo labels on a synthetic disc, trainer configs, and tiny end-to-end trainer runs on synthetic images."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import salplug
from salplug_a2s import A2S, A2SStage1, A2SStage1Trainer, A2STrainer
from salplug_a2s.data import list_images
from salplug_a2s.pseudo_labels import refine, refine_many


def disc_scene(height: int = 64, width: int = 80, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    mask = (ys - 0.5 * height) ** 2 + (xs - 0.45 * width) ** 2 < (0.25 * height) ** 2
    background = torch.tensor([0.3, 0.6, 0.35])[:, None, None] + 0.03 * torch.randn((3, height, width), generator=generator)
    disc = torch.tensor([0.9, 0.15, 0.1])[:, None, None] + 0.03 * torch.randn((3, height, width), generator=generator)
    return torch.where(mask, disc, background).clamp(0, 1)[None], mask


def run_until(trainer: str, out: Path, settings: dict, steps: int) -> None:
    """Run a trainer and stop it cleanly (resumable) after `steps` optimiser steps."""
    salplug.build("trainer", trainer, out=str(out), max_steps=steps, **settings).run()


def test_a2s_pseudo_labels_snap_a_rough_map_to_the_disc():
    image, mask = disc_scene()
    generator = torch.Generator().manual_seed(1)
    # a rough activation map: the disc dilated by a blur, plus speckle noise
    rough = torch.nn.functional.avg_pool2d(mask[None, None].float(), 9, stride=1, padding=4)
    rough = (0.15 + 0.7 * rough + 0.25 * torch.randn(rough.shape, generator=generator)).clamp(0, 1)
    label = refine(image, rough)
    assert label.shape == rough.shape and 0 <= float(label.min()) and float(label.max()) <= 1
    hard = label[0, 0] > 0.5
    iou = float((hard & mask).sum() / (hard | mask).sum())
    rough_iou = float(((rough[0, 0] > 0.5) & mask).sum() / ((rough[0, 0] > 0.5) | mask).sum())
    assert iou > 0.9 and iou > rough_iou


def test_a2s_trainer_defaults_are_the_papers():
    s1, s2 = A2SStage1Trainer().config, A2STrainer().config
    assert (s1.lr, s1.momentum, s1.weight_decay, s1.epochs, s1.milestones, s1.batch_size, s1.size, s1.fuse_stride) == (
        1.0, 0.9, 5e-4, 20, [12, 16], 8, 320, 2)
    assert s1.level_weights == [1.0, 0.1, 0.3, 0.5] and s1.sample_fraction == 0.5 and s1.l1 == 0.1
    assert (s2.lr, s2.encoder_lr_mult, s2.epochs, s2.milestones, s2.batch_size, s2.size) == (0.005, 0.1, 25, [15, 20], 8, 320)
    assert (s2.rectify_after, s2.rectify_lambda, s2.crf_gt_prob, s2.median_size) == (2, 0.4, 0.7, 7)


def test_a2s_training_refuses_mask_folders(tmp_path):
    (tmp_path / "masks").mkdir()
    with pytest.raises(ValueError, match="mask"):
        list_images([tmp_path / "masks"])


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("data") / "images"
    folder.mkdir()
    for seed in range(3):
        image, _ = disc_scene(48, 56, seed)
        rgb = (image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        cv2.imwrite(str(folder / f"{seed}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return folder


def test_a2s_trainers_run_end_to_end_on_tiny_data(image_folder, tmp_path):
    common = {"images": [str(image_folder)], "backbone_weights": None, "size": 64, "channels": 8, "batch_size": 2}
    stage1 = salplug.build("trainer", "a2s-stage1", out=str(tmp_path / "s1.pt"), cache_dir=str(tmp_path / "cache"),
                           epochs=2, milestones=[1], **common)
    path1 = stage1.run()
    prior1 = A2SStage1(checkpoint=str(path1), backbone_weights=None)
    assert prior1.arch == {"backbone": "mobilenetv2_100", "size": 64, "channels": 8, "fuse_stride": 2}
    assert prior1.card["training"]["epochs_done"] == 2 and "epochs=2" in prior1.card["command"]
    stage2 = salplug.build("trainer", "a2s", out=str(tmp_path / "s2.pt"), stage1_checkpoint=str(path1),
                           labels_dir=str(tmp_path / "labels"), epochs=2, rectify_after=1, **common)
    path2 = stage2.run()
    assert len(list((tmp_path / "labels").rglob("*.png"))) == 3
    prior2 = A2S(checkpoint=str(path2), backbone_weights=None)
    assert prior2.arch["size"] == 64 and len(prior2.card["training"]["loss_history"]) == 2
    out = prior2(torch.rand(2, 3, 30, 45))
    assert out.shape == (2, 1, 30, 45) and torch.isfinite(out).all()


def test_a2s_trainers_take_an_image_list_and_report_a_validation_curve(image_folder, tmp_path):
    """Training reads only the listed stems; held-out masks give a per-epoch MAE (reported, not used)."""
    (tmp_path / "train.txt").write_text("# two of the three\n0\n2\n")
    val = tmp_path / "val"
    (val / "images").mkdir(parents=True)
    (val / "masks").mkdir()
    for seed in (5, 6):
        image, mask = disc_scene(48, 56, seed)
        rgb = (image[0].permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        cv2.imwrite(str(val / "images" / f"v{seed}.png"), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(val / "masks" / f"v{seed}.png"), mask.numpy().astype(np.uint8) * 255)
    common = {"images": [str(image_folder)], "image_list": str(tmp_path / "train.txt"), "validation": str(val),
              "backbone_weights": None, "size": 64, "channels": 8, "batch_size": 2}
    path1 = salplug.build("trainer", "a2s-stage1", out=str(tmp_path / "s1.pt"), cache_dir=None, epochs=2,
                          milestones=[1], **common).run()
    card1 = A2SStage1(checkpoint=str(path1), backbone_weights=None).card
    assert card1["data"][-1] == "2 images"
    curve = card1["training"]["validation_mae"]
    assert len(curve) == 2 and all(0 <= v <= 1 for v in curve) and card1["training"]["validation_images"] == 2
    path2 = salplug.build("trainer", "a2s", out=str(tmp_path / "s2.pt"), stage1_checkpoint=str(path1), labels_dir=None,
                          epochs=2, milestones=[1], crf_workers=2, **common).run()
    training = A2S(checkpoint=str(path2), backbone_weights=None).card["training"]
    assert len(training["validation_mae"]) == 2 and 0 <= training["pseudo_label_validation_mae"] <= 1
    assert training["epochs_done"] == 2 and training["label_seconds"] >= 0


def test_a2s_pseudo_labels_are_the_same_in_worker_processes():
    images = torch.stack([(disc_scene(40, 48, seed)[0][0] * 255).round().to(torch.uint8) for seed in range(10)])
    probs = torch.stack([torch.nn.functional.avg_pool2d(disc_scene(40, 48, seed)[1][None].float(), 5, 1, 2)
                         for seed in range(10)])
    serial = refine_many(images, probs, gt_prob=0.7, median_size=7, workers=0)
    pooled = refine_many(images, probs, gt_prob=0.7, median_size=7, workers=2)
    assert serial.shape == (10, 1, 40, 48) and serial.dtype == torch.uint8
    assert torch.equal(serial, pooled) and serial.float().std() > 0


def test_a2s_image_list_must_name_existing_stems(image_folder):
    with pytest.raises(ValueError, match="not found"):
        list_images([image_folder], only={"0", "missing"})


@pytest.mark.parametrize("trainer", ["a2s-stage1", "a2s"])
def test_a2s_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(trainer, image_folder, tmp_path):
    """The loop's run state (weights, optimiser, schedule, RNG, data position; stage 2 also its rectified
    labels) continues the run exactly, mid-epoch too, and a state made with other settings is refused."""
    common = {"images": [str(image_folder)], "backbone_weights": None, "size": 64, "channels": 8, "batch_size": 2,
              "epochs": 3, "milestones": [2]}
    if trainer == "a2s":
        stage1 = salplug.build("trainer", "a2s-stage1", out=str(tmp_path / "s1.pt"), cache_dir=None, epochs=1,
                               images=[str(image_folder)], backbone_weights=None, size=64, channels=8, batch_size=2).run()
        common.update(stage1_checkpoint=str(stage1), labels_dir=None, rectify_after=1)
    else:
        common.update(cache_dir=None)
    whole = salplug.build("trainer", trainer, out=str(tmp_path / "whole.pt"), **common).run()
    run_until(trainer, tmp_path / "cut.pt", common, 3)  # 2 steps an epoch: stopped inside the second
    with pytest.raises(salplug.CheckpointError, match=r"lr \(state [0-9.]+, now 0.123\)"):
        salplug.build("trainer", trainer, out=str(tmp_path / "cut.pt"), resume=True, **{**common, "lr": 0.123}).run()
    cut = salplug.build("trainer", trainer, out=str(tmp_path / "cut.pt"), resume=True, **common).run()

    cls = A2S if trainer == "a2s" else A2SStage1
    a = cls(checkpoint=str(whole), backbone_weights=None)
    b = cls(checkpoint=str(cut), backbone_weights=None)
    assert b.card["training"]["epochs_done"] == 3 and b.card["training"]["resumed_at_steps"] == [3]
    assert b.card["training"]["loss_history"] == a.card["training"]["loss_history"]
    if trainer == "a2s-stage1":  # only the head is trained and stored; the frozen encoder is random here
        a, b = a.head, b.head
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(x, y), name


def test_a2s_stage2_loss_in_bf16_autocast_stays_fp32():
    """SSIM's variances cancel below zero in bf16 (the loss went to −inf); the loss is taken in fp32 under the loop's autocast."""
    from salplug.data import sample_batch
    from salplug_a2s.train_stage2 import batch_loss

    images = sample_batch(128, 2)
    labels = (images.mean(dim=1, keepdim=True) > 0.5).float()
    losses = {}
    for precision in ("fp32", "bf16"):
        model = A2S(checkpoint=None, backbone_weights=None, size=128, channels=8, seed=0)
        model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
            loss, logits = batch_loss(model, images, labels)
        assert logits.dtype == torch.float32 and loss.dtype == torch.float32
        losses[precision] = float(loss.detach())
    assert np.isfinite(losses["bf16"]) and abs(losses["bf16"] - losses["fp32"]) < 0.05 * losses["fp32"]


def test_a2s_stage2_resumes_from_a_portable_state_with_labels_rebuilt(image_folder, tmp_path):
    """A state without labels resumes: exactly while they are still stage 1's, from the detector's maps after."""
    from salplug_a2s.portable_state import make_portable, rebuild_error
    from salplug_a2s.training import start_run
    from salplug.train import read_state, state_path

    stage1 = salplug.build("trainer", "a2s-stage1", out=str(tmp_path / "s1.pt"), cache_dir=None, epochs=1,
                           images=[str(image_folder)], backbone_weights=None, size=64, channels=8, batch_size=2).run()
    common = {"images": [str(image_folder)], "backbone_weights": None, "size": 64, "channels": 8, "batch_size": 2,
              "stage1_checkpoint": str(stage1), "labels_dir": None, "epochs": 3, "milestones": [2], "rectify_after": 1}
    whole = A2S(checkpoint=str(salplug.build("trainer", "a2s", out=str(tmp_path / "whole.pt"), **common).run()),
                backbone_weights=None)
    for stop in (1, 2):
        out = tmp_path / f"cut{stop}.pt"
        run_until("a2s", out, common, 2 * stop)  # two steps an epoch: stopped at the end of epoch `stop`
        full = state_path(out)
        state = read_state(full)
        error = rebuild_error(full)
        make_portable(full, full)
        assert read_state(full)["extra"]["labels"] is None
        if stop == 2:
            # Every label was rectified once: the rebuilt ones (the detector's map now) come closer
            # to the true rectified labels than stage 1's labels do.
            trainer = salplug.build("trainer", "a2s", out=str(out), **common)
            items, images = start_run(trainer.config, "a2s")
            model = A2S(checkpoint=None, backbone_weights=None, size=64, channels=8)
            model.load_state_dict(state["model"])
            keys = [k for k, _ in items]
            rebuilt = trainer.rebuild_labels(model, images, keys, stop, state["extra"]["stage1_digest"])
            torch.manual_seed(0)
            first = trainer.labels(images, keys, None)[0]
            true = state["extra"]["labels"].float()
            assert (rebuilt - true).abs().mean() < (first - true).abs().mean()
            assert error["mean_abs_difference"] == round(float((rebuilt - true).abs().mean()), 5)
        else:
            assert error["mean_abs_difference"] == 0 and error["other_side_of_half"] == 0
        cut = A2S(checkpoint=str(salplug.build("trainer", "a2s", out=str(out), resume=True, **common).run()),
                  backbone_weights=None)
        assert cut.card["training"]["labels_rebuilt"] == [stop] and cut.card["training"]["epochs_done"] == 3
        assert cut.card["training"]["loss_history"][:stop] == whole.card["training"]["loss_history"][:stop]
        if stop == 1:
            # No label has been rectified after one epoch: the rebuilt ones are stage 1's, and the run is exact.
            for (name, x), y in zip(whole.state_dict().items(), cut.state_dict().values()):
                assert torch.equal(x, y), name


def test_a2s_rebuilt_labels_need_stage_1_only_while_it_still_counts():
    from salplug_a2s.losses import needs_first_labels, rebuilt_labels

    first, current = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 2, 2)
    assert torch.allclose(rebuilt_labels(first, current, 1, 0.4), torch.full_like(current, 0.6))
    assert needs_first_labels(6, 0.4) and not needs_first_labels(7, 0.4)  # 0.4**7 = 0.0016 < 1/512
    assert torch.equal(rebuilt_labels(None, current, 7, 0.4), current)
    with pytest.raises(ValueError, match="stage-1 labels still weigh"):
        rebuilt_labels(None, current, 2, 0.4)
