"""Stage 2, region level: SLIC superpixels, their statistics, and object proposals.

Proposals stand in for EdgeBoxes (not available offline): a hierarchical grouping of the
superpixels in the manner of selective search (Uijlings et al., 2013) — the most similar
pair of adjacent regions is merged until one region is left, and every merged region is a
proposal. V of them are kept for objectness (colour contrast with the ring of superpixels
around the region, times how well the region fills its box) and spread (greedy selection
that skips a box overlapping an already chosen one by more than `overlap` IoU).
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import numpy as np
from skimage.color import rgb2lab

from salplug.ops import superpixels


@dataclass
class Regions:
    """Superpixels of one image and the proposals grouped from them."""

    labels: np.ndarray  # H×W int, 0..n-1
    area: np.ndarray  # n pixels
    centroid: np.ndarray  # n×2 (y, x) pixels
    box: np.ndarray  # n×4 (y0, x0, y1, x1), end exclusive
    lab: np.ndarray  # n×3 mean CIE-Lab colour
    members: np.ndarray  # V×n bool: superpixels of each proposal
    proposal_box: np.ndarray  # V×4
    centre: np.ndarray  # V: the superpixel at each proposal's box centre

    @property
    def count(self) -> int:
        return len(self.area)


def segment_stats(labels: np.ndarray, lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Area, centroid (y, x), bounding box and mean Lab colour of every superpixel."""
    n = int(labels.max()) + 1
    flat = labels.ravel()
    ys, xs = np.indices(labels.shape).reshape(2, -1)
    area = np.bincount(flat, minlength=n).astype(np.float64)
    centroid = np.stack([np.bincount(flat, ys, n), np.bincount(flat, xs, n)], 1) / area[:, None]
    box = np.stack([np.full(n, labels.shape[0]), np.full(n, labels.shape[1]), np.zeros(n), np.zeros(n)], 1).astype(np.int64)
    np.minimum.at(box[:, 0], flat, ys)
    np.minimum.at(box[:, 1], flat, xs)
    np.maximum.at(box[:, 2], flat, ys + 1)
    np.maximum.at(box[:, 3], flat, xs + 1)
    colour = np.stack([np.bincount(flat, lab.reshape(-1, 3)[:, c], n) for c in range(3)], 1) / area[:, None]
    return area, centroid, box, colour


def adjacency(labels: np.ndarray) -> np.ndarray:
    """n×n bool: superpixels that touch horizontally or vertically."""
    n = int(labels.max()) + 1
    adj = np.zeros((n, n), dtype=bool)
    for a, b in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
        differ = a != b
        adj[a[differ], b[differ]] = True
    return adj | adj.T


def group(area: np.ndarray, box: np.ndarray, lab: np.ndarray, adj: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Hierarchical grouping: members (R×n bool) and boxes (R×4) of the n−1 merged regions, in merge order.

    Similarity of adjacent regions a, b (selective search's colour, size and fill terms):
    exp(−|Lab_a − Lab_b| / 20) + (1 − (A_a + A_b) / A) + (1 − (box(a∪b) − A_a − A_b) / A).
    """
    n = len(area)
    total = area.sum()
    colour_sum = (lab * area[:, None]).tolist()
    areas, boxes = area.tolist(), box.tolist()
    neighbours = [set(np.flatnonzero(adj[i]).tolist()) for i in range(n)]
    alive = [True] * n
    members = [np.eye(1, n, i, dtype=bool)[0] for i in range(n)]

    def similarity(a: int, b: int) -> float:
        ca = np.asarray(colour_sum[a]) / areas[a]
        cb = np.asarray(colour_sum[b]) / areas[b]
        ba, bb = boxes[a], boxes[b]
        union = (max(ba[2], bb[2]) - min(ba[0], bb[0])) * (max(ba[3], bb[3]) - min(ba[1], bb[1]))
        size = areas[a] + areas[b]
        return float(np.exp(-np.linalg.norm(ca - cb) / 20) + (1 - size / total) + (1 - (union - size) / total))

    heap = [(-similarity(a, b), a, b) for a in range(n) for b in neighbours[a] if a < b]
    heapq.heapify(heap)
    merged_members, merged_boxes = [], []
    while heap:
        _, a, b = heapq.heappop(heap)
        if not (alive[a] and alive[b]):
            continue
        new = len(areas)
        alive[a] = alive[b] = False
        alive.append(True)
        areas.append(areas[a] + areas[b])
        colour_sum.append([x + y for x, y in zip(colour_sum[a], colour_sum[b])])
        ba, bb = boxes[a], boxes[b]
        boxes.append([min(ba[0], bb[0]), min(ba[1], bb[1]), max(ba[2], bb[2]), max(ba[3], bb[3])])
        members.append(members[a] | members[b])
        merged_members.append(members[new])
        merged_boxes.append(boxes[new])
        around = (neighbours[a] | neighbours[b]) - {a, b}
        neighbours.append(around)
        for c in around:
            neighbours[c] -= {a, b}
            neighbours[c].add(new)
            heapq.heappush(heap, (-similarity(new, c), c, new))
    if not merged_members:
        return np.ones((1, n), dtype=bool), np.array([[0, 0, *box[:, 2:].max(0)]])
    return np.stack(merged_members), np.asarray(merged_boxes, dtype=np.int64)


def box_iou(one: np.ndarray, many: np.ndarray) -> np.ndarray:
    """IoU of box `one` (4,) with each row of `many` (k×4); boxes (y0, x0, y1, x1)."""
    h = np.clip(np.minimum(one[2], many[:, 2]) - np.maximum(one[0], many[:, 0]), 0, None)
    w = np.clip(np.minimum(one[3], many[:, 3]) - np.maximum(one[1], many[:, 1]), 0, None)
    inter = h * w
    size = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / (size(one) + size(many) - inter)


def objectness(members: np.ndarray, boxes: np.ndarray, area: np.ndarray, lab: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """Colour contrast of each region with its ring of adjacent superpixels, times its box fill."""
    m = members.astype(np.float64)
    inside = (m * area) @ lab / (m @ area)[:, None]
    ring = ((m @ adj) > 0) & ~members
    r = ring * area
    ring_area = r.sum(1)
    around = r @ lab / np.maximum(ring_area, 1)[:, None]
    contrast = np.where(ring_area > 0, np.linalg.norm(inside - around, axis=1), 0.0)
    box_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return contrast * (m @ area) / np.maximum(box_area, 1)


def select(members: np.ndarray, boxes: np.ndarray, score: np.ndarray, area: np.ndarray, count: int,
           overlap: float = 0.8, min_share: float = 0.01, max_share: float = 0.9) -> np.ndarray:
    """Indices of up to `count` proposals: best objectness first, skipping near-duplicate boxes (spread).

    Only regions covering `min_share` to `max_share` of the image (superpixel `area`s) compete.
    """
    share = (members @ area) / area.sum()
    order = [i for i in np.argsort(-score) if min_share <= share[i] <= max_share]
    chosen: list[int] = []
    for i in order:
        if len(chosen) == count:
            break
        if not chosen or box_iou(boxes[i], boxes[chosen]).max() <= overlap:
            chosen.append(i)
    for i in order:  # fewer distinct boxes than `count`: fill with the best remaining
        if len(chosen) == count:
            break
        if i not in chosen:
            chosen.append(i)
    return np.asarray(chosen if chosen else [int(np.argmax(share))], dtype=np.int64)


def regions(image: np.ndarray, n_segments: int, compactness: float, proposals: int) -> Regions:
    """Superpixels and V proposals of an H×W×3 RGB image in [0, 1]."""
    labels = superpixels(image, n_segments, compactness)
    lab_image = rgb2lab(image)
    area, centroid, box, lab = segment_stats(labels, lab_image)
    adj = adjacency(labels)
    members, boxes = group(area, box, lab, adj)
    keep = select(members, boxes, objectness(members, boxes, area, lab, adj), area, proposals)
    members, boxes = members[keep], boxes[keep]
    box_centre = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], 1)
    distance = np.linalg.norm(centroid[None] - box_centre[:, None], axis=2)
    centre = np.where(members, distance, np.inf).argmin(1)
    return Regions(labels, area, centroid, box, lab, members, boxes, centre)
