"""The ceilings diagnosis on synthetic held-out scenes: its MIJR row is the refiner's output, its bounds behave."""

import cv2
import numpy as np
import torch
from mijr_synthetic import pool, scene
from salplug_mijr import MIJR
from salplug_mijr.ceilings import COMMAND, SOURCES, ceilings, make_target

from salplug.metrics import Scorer

TINY = {"backbone_weights": None, "size": 64, "segments": 40, "proposals": 12, "neighbours": 3, "filter_epochs": 50}
METRICS = ("mae", "fmeasure")


def held_out(seeds):
    out = []
    for seed in seeds:
        image, base, mask = scene(seed, 80, 72)
        out.append((image, base, (mask * 255).astype(np.uint8)))
    return out


def test_ceilings_rows_match_the_refiner_and_the_true_label_bound():
    refiner = MIJR(**TINY).fit(pool(8, 5))
    scenes = held_out(range(30, 36))
    rows = ceilings(refiner, [make_target(refiner, *s) for s in scenes], folds=3, metrics=METRICS)
    assert set(rows) == {"base map", *SOURCES, *(f"base + {s}" for s in SOURCES)}

    direct = Scorer("mijr", METRICS)
    for image, base, mask in scenes:
        out = refiner(torch.from_numpy(image).permute(2, 0, 1)[None], torch.from_numpy(base)[None, None])
        direct.add(torch.round(out * 255).to(torch.uint8), torch.from_numpy(mask)[None, None])
    expected = direct.finish().scores
    for metric in ("mae", "max_f", "mean_f"):
        assert rows["base + mijr (Eq. 6-8)"][metric] == expected[metric]

    # a classifier given the true labels of the image itself beats the noisy base map averaged per superpixel
    assert rows["true labels, same image"]["mae"] < rows["base map per superpixel"]["mae"]
    assert rows["true labels, same image"]["fallbacks"] == 0


def test_ceilings_command_reads_a_dataset_folder(tmp_path, capsys):
    refiner = MIJR(**TINY).fit(pool(8, 5))
    index = refiner.save_index(tmp_path / "pool.pt")
    for sub in ("images", "masks", "priors/base"):
        (tmp_path / "data" / sub).mkdir(parents=True)
    for i, (image, base, mask) in enumerate(held_out(range(40, 44))):
        cv2.imwrite(str(tmp_path / "data" / "images" / f"im{i}.png"), cv2.cvtColor((image * 255).astype(np.uint8), cv2.COLOR_RGB2BGR))
        cv2.imwrite(str(tmp_path / "data" / "priors" / "base" / f"im{i}.png"), (base * 255).astype(np.uint8))
        cv2.imwrite(str(tmp_path / "data" / "masks" / f"im{i}.png"), mask)
    capsys.readouterr()  # the fit's log
    subset = tmp_path / "held-out.txt"
    subset.write_text("im1\nim3\n")
    COMMAND.main(["--dataset", str(tmp_path / "data"), "--prior", "base", "--subset", str(subset), "--index", str(index),
          "--folds", "2", "--set", "backbone_weights=null"])
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"prior base, 2 held-out images ({subset}), pool {index}, pool labels pseudo"
    assert [line[:42].rstrip() for line in out[2:]] == ["base map", *(n for s in SOURCES for n in (s, f"base + {s}"))]
