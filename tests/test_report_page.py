"""report.html shows a grid evaluation offline: the tables, the curves, and every image beside each method's map.

A small synthetic dataset in tmp_path, scored from folders of maps by two methods: one close
to the masks with noise growing image by image, one of pure noise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

import salplug

from salplug.data._datasets import SODDataset
from salplug.metrics import GridResult, format_markdown, write_outputs
from salplug.metrics._evaluation import score_chain, score_folder
from salplug.metrics._report_page import write_report_page

CHROMIUM = next((shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")
                 if shutil.which(name)), None)


def synthetic_dataset(root: Path, count: int = 5) -> tuple[SODDataset, dict[str, Path]]:
    """`count` photos with rectangle masks, and the prior folders (maps) of methods ``close`` and ``noise``."""
    rng = np.random.default_rng(0)
    folders = {name: root / "priors" / name for name in ("close", "noise")}
    for folder in [root / "images", root / "masks", *folders.values()]:
        folder.mkdir(parents=True)
    for i in range(count):
        mask = np.zeros((120, 200), np.uint8)
        mask[20 + 4 * i:100, 30:120 + 10 * i] = 255
        photo = rng.integers(0, 256, (120, 200, 3), dtype=np.uint8)
        photo[mask > 0] = (40 * i, 200, 90)
        close = np.clip(mask.astype(float) + rng.normal(0, 30 + 25 * i, mask.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / "images" / f"img{i}.png"), photo)
        cv2.imwrite(str(root / "masks" / f"img{i}.png"), mask)
        cv2.imwrite(str(folders["close"] / f"img{i}.png"), close)
        cv2.imwrite(str(folders["noise"] / f"img{i}.png"), rng.integers(0, 256, mask.shape, dtype=np.uint8))
    return SODDataset(root), folders


@pytest.fixture
def grid(tmp_path) -> list[GridResult]:
    dataset, folders = synthetic_dataset(tmp_path / "data")
    metrics = ["mae", "smeasure", "fmeasure"]
    scores = [score_folder(dataset, folder, name, metrics=metrics) for name, folder in folders.items()]
    return [GridResult.from_scores("synthetic", s, images=dataset.images, masks=dataset.masks) for s in scores]


def image_rows(page: str) -> list[str]:
    return re.findall(r'<tr data-key="([^"]+)"', page)


def sources(page: str) -> list[str]:
    return re.findall(r'<img[^>]* src="([^"]+)"', page)


def test_a_grid_result_keeps_the_files_of_each_image(grid, tmp_path):
    close = grid[0]
    assert sorted(close.maps) == sorted(close.per_image) == [f"img{i}" for i in range(5)]
    assert Path(close.maps["img2"]) == tmp_path / "data" / "priors" / "close" / "img2.png"
    assert Path(close.images["img2"]) == tmp_path / "data" / "images" / "img2.png"
    assert Path(close.masks["img2"]) == tmp_path / "data" / "masks" / "img2.png"


def test_a_chain_names_its_input_maps_and_the_maps_it_saved(tmp_path):
    dataset, _ = synthetic_dataset(tmp_path / "data", count=2)
    chain = salplug.Chain([salplug.build("prior", "center"), salplug.build("postprocessor", "median")])
    before, after = score_chain(dataset, chain, "median", priors=["close"], score_input=True,
                                save_maps=tmp_path / "saved", metrics=["mae"])
    assert before.maps == {key: str(tmp_path / "data" / "priors" / "close" / f"{key}.png") for key in ("img0", "img1")}
    assert after.maps == {key: str(tmp_path / "saved" / "close" / f"{key}.png") for key in ("img0", "img1")}
    assert all(Path(path).is_file() for path in after.maps.values())
    assert score_chain(dataset, chain, "median", metrics=["mae"])[0].maps == {}


def test_write_outputs_writes_a_page_with_the_table_and_one_row_per_image(grid, tmp_path):
    written = write_outputs(grid, tmp_path / "out", command="salplug eval --dataset data")
    page = written["report.html"].read_text(encoding="utf-8")
    assert written["report.html"] == tmp_path / "out" / "report.html"
    assert image_rows(page) == [f"img{i}" for i in range(5)]
    best = format_markdown(grid).splitlines()[3].split("|")[2].strip()
    assert re.fullmatch(r"\*\*[0-9.]+\*\*", best)
    assert f"<strong>{best.strip('*')}</strong>" in page
    assert 'src="curves.png"' in page and "salplug eval --dataset data" in page
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert len(sources(page)) == 1 + 5 * (2 + len(grid))


def test_the_page_keeps_working_when_its_folder_moves(grid, tmp_path):
    write_report_page(grid, tmp_path / "out")
    moved = shutil.move(tmp_path / "out", tmp_path / "elsewhere")
    page = (Path(moved) / "report.html").read_text(encoding="utf-8")
    thumbnails = sources(page)
    assert thumbnails and all(not Path(src).is_absolute() and (Path(moved) / src).is_file() for src in thumbnails)
    assert {cv2.imread(str(Path(moved) / src)).shape[:2] for src in thumbnails} == {(96, 160)}


def test_images_without_a_readable_file_show_a_placeholder(grid, tmp_path):
    grid[1].maps["img0"] = str(tmp_path / "gone.png")
    del grid[1].maps["img1"]
    page = write_report_page(grid, tmp_path / "out").read_text(encoding="utf-8")
    assert page.count("map unreadable") == 1 and page.count("no map file") == 1
    assert len(sources(page)) == 5 * (2 + len(grid)) - 2


@pytest.mark.subprocess
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (Debian: apt-get install -y chromium)")
def test_a_headless_browser_renders_the_page_sorted_worst_first(grid, tmp_path):
    page = write_report_page(grid, tmp_path / "out")
    browser = [CHROMIUM, "--headless", "--disable-gpu", "--no-sandbox", f"--user-data-dir={tmp_path / 'profile'}"]
    shot = tmp_path / "shot.png"
    subprocess.run([*browser, f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                   check=True, capture_output=True, timeout=120)
    pixels = cv2.imread(str(shot))
    assert pixels.shape == (1600, 1200, 3)
    assert (pixels.min(axis=2) < 200).mean() > 0.02, "the screenshot is blank"
    dom = subprocess.run([*browser, "--dump-dom", page.as_uri()], check=True, capture_output=True, text=True,
                         timeout=120).stdout
    assert '<table class="scores">' in dom and 'data-sorted="sm:mean:worst"' in dom
    mean_sm = {key: np.mean([r.per_image[key]["sm"] for r in grid]) for key in grid[0].per_image}
    assert image_rows(dom) == sorted(mean_sm, key=mean_sm.get)
    assert image_rows(dom) != sorted(mean_sm)
