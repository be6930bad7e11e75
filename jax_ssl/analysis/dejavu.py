"""The Déjà vu memorisation test (Meehan et al. 2023; facebookresearch/DejaVu).

Two models are trained alike on disjoint sets A (the target) and B (the reference). For
each image of A, the crop of its background that avoids every object box (the
periphery crop) is embedded by each model, and a kNN over a labelled public set X,
disjoint from both, predicts the object's label from the background alone. A model
that names the object of an image it was trained on, where the reference (which never
saw it) cannot, has memorised that image.

Following the official code: the periphery crop is the rectangle, among the gaps
between the boxes within each vertical strip cut by the boxes' x-edges, whose shorter
side is longest (and above a minimum, else the image is not attacked); the kNN uses L2
distance on unnormalised embeddings, k = 100 and an unweighted vote; a prediction's
confidence is minus the entropy of its votes. Scores: ``memorised`` is the share of
attacked images that the target gets right and the reference wrong
(``dejavu_scores``), and the confidence-ranked curve is each model's accuracy on its
own most confident fraction of them (``confidence_curve``).

``scenes`` builds a dataset the protocol can run on without downloading one:
Fashion-MNIST objects pasted at random places on procedural backgrounds unique to each
image, with their boxes.
"""
from __future__ import annotations

import os
import xml.etree.ElementTree as ElementTree

import numpy as np

from jax_ssl.analysis import curate
from jax_ssl.data.sources import IMAGE_EXTENSIONS

NEIGHBOURS = 100  # the official attack's k (--k_attk)
OFFICIAL_MIN_SIDE = 100  # px: the official shortest periphery crop, on ImageNet
FRACTIONS = tuple(np.linspace(0.1, 1.0, 10).round(2))  # of the most confident images


def default_min_side(height: int, width: int) -> int:
    """A quarter of the shorter side: the official 100 px on ImageNet's ~400 px images."""
    return min(height, width) // 4


def periphery_box(boxes, height: int, width: int, min_side: int):
    """The periphery crop (y0, x0, y1, x1), end-exclusive, of an image whose objects
    have ``boxes`` [(y0, x0, y1, x1), ...]; None when its shorter side would not exceed
    ``min_side`` pixels."""
    edges = sorted({0, width, *(b[1] for b in boxes), *(b[3] for b in boxes)})
    best, best_side = None, min_side
    for left, right in zip(edges[:-1], edges[1:], strict=True):
        if right <= left:
            continue
        covered = sorted((b[0], b[2]) for b in boxes if b[1] < right and b[3] > left)
        merged = []
        for top, bottom in covered:
            if merged and top <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], bottom)
            else:
                merged.append([top, bottom])
        gaps = zip([0] + [b for _, b in merged], [t for t, _ in merged] + [height],
                   strict=True)
        for top, bottom in gaps:
            side = min(bottom - top, right - left)
            if side > best_side:
                best, best_side = (top, left, bottom, right), side
    return best


def knn_votes(queries: np.ndarray, public: np.ndarray, public_labels: np.ndarray, mesh, *,
              num_classes: int, k: int = NEIGHBOURS) -> np.ndarray:
    """[Q, C] label counts among each query's ``k`` nearest public embeddings by L2
    distance (the public set split over ``mesh``)."""
    # ‖q − p‖² = ‖q‖² − 2 q·p + ‖p‖²: the nearest maximise [q, 1]·[2p, −‖p‖²]
    queries = np.concatenate([queries, np.ones((len(queries), 1))], axis=1)
    public = np.concatenate([2 * public, -np.sum(public ** 2, axis=1, keepdims=True)], axis=1)
    _, index = curate.nearest(queries.astype(np.float32), public.astype(np.float32), k, mesh)
    votes = np.zeros((len(queries), num_classes), np.int64)
    np.add.at(votes, (np.arange(len(queries))[:, None], public_labels[index]), 1)
    return votes


def predict(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[Q, C] votes → (labels [Q]: the most voted, ties to the smaller; confidence [Q]:
    minus the entropy of the votes' distribution)."""
    p = votes / votes.sum(axis=1, keepdims=True)
    entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), axis=1)
    return votes.argmax(axis=1), -entropy


def dejavu_scores(target_correct: np.ndarray, reference_correct: np.ndarray) -> dict:
    """Shares of the attacked images: ``memorised`` (target right, reference wrong),
    ``forgotten`` (the reverse), ``correlated`` (both right), and each model's accuracy."""
    t, r = np.asarray(target_correct, bool), np.asarray(reference_correct, bool)
    return {"memorised": float(np.mean(t & ~r)), "forgotten": float(np.mean(~t & r)),
            "correlated": float(np.mean(t & r)), "target_accuracy": float(t.mean()),
            "reference_accuracy": float(r.mean())}


def confidence_curve(correct: np.ndarray, confidence: np.ndarray,
                     fractions=FRACTIONS) -> np.ndarray:
    """Accuracy on the most confident ``fraction`` of the images, for each fraction
    (at least one image; ties in confidence keep the images' order)."""
    order = np.argsort(-np.asarray(confidence), kind="stable")
    correct = np.asarray(correct, bool)[order]
    return np.array([correct[:max(1, round(f * len(correct)))].mean() for f in fractions])


def _texture(rng: np.random.Generator, size: int) -> np.ndarray:
    """[size, size, 3] float in [0, 1]: a random base colour, plus per channel three
    sinusoidal gratings of random amplitude, frequency (1-5 cycles), orientation and
    phase, plus faint noise: a background whose colour and pattern are its own."""
    y, x = np.mgrid[0:size, 0:size] / size
    out = np.broadcast_to(rng.uniform(0.2, 0.8, 3), (size, size, 3)).copy()
    for c in range(3):
        for _ in range(3):
            angle, cycles = rng.uniform(0, np.pi), rng.uniform(1, 5)
            phase, amplitude = rng.uniform(0, 2 * np.pi), rng.uniform(0, 0.15)
            out[..., c] += amplitude * np.sin(
                2 * np.pi * cycles * (x * np.cos(angle) + y * np.sin(angle)) + phase)
    return np.clip(out + 0.03 * rng.standard_normal(out.shape), 0.0, 1.0)


def scenes(objects: np.ndarray, *, size: int = 64, seed: int = 0,
           first_index: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Greyscale objects [N, h, w] uint8 on black (Fashion-MNIST) → (scenes [N, size,
    size, 3] uint8, boxes [N, 4] (y0, x0, y1, x1) end-exclusive: the object's nonzero
    pixels). Image i's background and place are drawn from (seed, first_index + i), so
    each image's background is its own and a split can be made in parts."""
    n, h, w = objects.shape
    images = np.zeros((n, size, size, 3), np.uint8)
    boxes = np.zeros((n, 4), np.int32)
    for i, obj in enumerate(objects):
        rng = np.random.default_rng([seed, first_index + i])
        background = _texture(rng, size)
        top, left = rng.integers(0, size - h + 1), rng.integers(0, size - w + 1)
        alpha = np.zeros((size, size, 1))
        alpha[top:top + h, left:left + w, 0] = obj / 255.0
        images[i] = np.round(255 * ((1 - alpha) * background + alpha)).astype(np.uint8)
        rows, cols = np.flatnonzero(obj.any(axis=1)), np.flatnonzero(obj.any(axis=0))
        boxes[i] = (top + rows[0], left + cols[0], top + rows[-1] + 1, left + cols[-1] + 1)
    return images, boxes


def periphery_boxes(boxes, shapes, *, min_side: int) -> tuple[np.ndarray, np.ndarray]:
    """Each image's object ``boxes`` and ``shapes`` [N, 2] (height, width) → (the
    periphery crops [M, 4] (y0, x0, y1, x1), the indices [M] of the N images that have
    one). The crops are cut and then resized like any evaluated image (the run's eval
    transform: short side resized, centre crop), as the official attack does."""
    crops, attacked = [], []
    for i, (image_boxes, (height, width)) in enumerate(zip(boxes, shapes, strict=True)):
        box = periphery_box(np.reshape(image_boxes, (-1, 4)).tolist(), int(height),
                            int(width), min_side)
        if box is not None:
            crops.append(box)
            attacked.append(i)
    if not crops:
        raise ValueError(f"no image has a background crop longer than {min_side} px on "
                         "its shorter side: lower min_side.")
    return np.asarray(crops, np.int32), np.asarray(attacked)


def voc_boxes(text: str) -> tuple[list[tuple[int, int, int, int]], tuple[int, int] | None]:
    """A PASCAL VOC annotation (ImageNet's box files, ``Annotation/<wnid>/<id>.xml``) →
    (its objects' boxes [(y0, x0, y1, x1), ...] as the official attack reads them:
    ``ymin, xmin, ymax, xmax``; the image's (height, width), None if not given)."""
    root = ElementTree.fromstring(text)
    boxes = [tuple(int(float(box.findtext(k))) for k in ("ymin", "xmin", "ymax", "xmax"))
             for box in root.iter("bndbox")]
    height, width = (int(float(root.findtext(f"size/{k}") or 0)) for k in ("height", "width"))
    return boxes, ((height, width) if height and width else None)


def partition(labels, annotated, *, per_class: int) -> dict[str, np.ndarray]:
    """The official split (imagenet_partition.py) of a labelled set's indices, per class:
    ``bbox_A`` and ``bbox_B``, the first and next ``min(per_class, ⌊boxed / 2⌋)`` of its
    images with boxes; ``shared``, enough images without boxes to bring A = bbox_A ∪
    shared and B = bbox_B ∪ shared to ``per_class``; ``public``, the rest. Within a
    class, images are taken in index order (the official script's order follows
    os.listdir and a set's, which are not specified). Only bbox_A and bbox_B are
    attacked; the public set is disjoint from A and B."""
    labels, annotated = np.asarray(labels), np.asarray(annotated, bool)
    out = {name: [] for name in ("bbox_A", "bbox_B", "shared", "public")}
    for label in np.unique(labels):
        boxed = np.flatnonzero((labels == label) & annotated)
        plain = np.flatnonzero((labels == label) & ~annotated)
        num_boxed = min(len(boxed) // 2, per_class)
        num_shared = per_class - num_boxed
        out["bbox_A"].append(boxed[:num_boxed])
        out["bbox_B"].append(boxed[num_boxed:2 * num_boxed])
        out["shared"].append(plain[:num_shared])
        out["public"].append(np.concatenate([boxed[2 * num_boxed:], plain[num_shared:]]))
    return {name: np.sort(np.concatenate(parts)).astype(np.int64)
            for name, parts in out.items()}


def link_partition(train_dir: str, boxes_dir: str, out_dir: str, *, per_class: int = 300,
                   public_per_class: int = 500, val_dir: str | None = None) -> dict:
    """Splits an ImageNet-style ``train_dir`` (one folder per class) with ``partition``
    and writes it as folders of symbolic links that ``folder:`` sources read:
    ``out_dir``/A/train (bbox_A ∪ shared) and B/train (bbox_B ∪ shared), the training
    sets; attack_A/train and attack_B/train (bbox_A, bbox_B), the attacked images; and
    public/train, the public set of ``public_per_class`` (the paper's: 500, for every
    ``per_class``). An image has boxes when ``boxes_dir``/Annotation/<class>/<id>.xml
    exists. ``val_dir`` is linked as A/val and B/val (the runs' eval split). Returns
    each set's size."""
    classes = sorted(d for d in os.listdir(train_dir)
                     if os.path.isdir(os.path.join(train_dir, d)))
    if not classes:
        raise ValueError(f"{train_dir!r} has no class folders (<class>/<image>).")
    files, labels = [], []
    for label, name in enumerate(classes):
        names = sorted(f for f in os.listdir(os.path.join(train_dir, name))
                       if f.lower().endswith(IMAGE_EXTENSIONS))  # what a folder: source reads
        files += [(name, f) for f in names]
        labels += [label] * len(names)
    annotated = [os.path.exists(os.path.join(boxes_dir, "Annotation", name,
                                             f"{os.path.splitext(f)[0]}.xml"))
                 for name, f in files]
    if not any(annotated):
        raise FileNotFoundError(f"no box files in {boxes_dir}/Annotation/<class>/: unpack "
                                "ImageNet's bboxes_annotations.tar.gz there.")
    parts = partition(labels, annotated, per_class=per_class)
    sets = {"A": np.concatenate([parts["bbox_A"], parts["shared"]]),
            "B": np.concatenate([parts["bbox_B"], parts["shared"]]),
            "attack_A": parts["bbox_A"], "attack_B": parts["bbox_B"],
            "public": partition(labels, annotated, per_class=public_per_class)["public"]}
    for set_name, indices in sets.items():
        for name in classes:  # every class, so that labels agree between the sets
            os.makedirs(os.path.join(out_dir, set_name, "train", name), exist_ok=True)
        for i in indices:
            name, f = files[i]
            os.symlink(os.path.abspath(os.path.join(train_dir, name, f)),
                       os.path.join(out_dir, set_name, "train", name, f))
    if val_dir is not None:
        for set_name in ("A", "B"):
            os.symlink(os.path.abspath(val_dir), os.path.join(out_dir, set_name, "val"))
    return {name: len(indices) for name, indices in sets.items()}


def attack(embeddings: dict, labels: np.ndarray, public_labels: np.ndarray, mesh, *,
           num_classes: int, k: int = NEIGHBOURS) -> dict:
    """Runs the test from ``embeddings`` {"target": (crops [M, D], public [P, D]),
    "reference": (...)}: each model's embeddings of the attacked images' periphery
    crops (their objects' ``labels`` [M]) and of the public set (``public_labels``).

    Returns {"scores": ``dejavu_scores``, "fractions", "curves": {model: accuracy on
    its most confident fractions}, and per model "predicted", "confidence", "correct"}.
    """
    out = {"fractions": list(FRACTIONS), "curves": {}}
    correct = {}
    for model in ("target", "reference"):
        crops, public = embeddings[model]
        votes = knn_votes(crops, public, np.asarray(public_labels), mesh,
                          num_classes=num_classes, k=k)
        predicted, confidence = predict(votes)
        correct[model] = predicted == np.asarray(labels)
        out["curves"][model] = confidence_curve(correct[model], confidence).tolist()
        out[model] = {"predicted": predicted.tolist(), "confidence": confidence.tolist(),
                      "correct": correct[model].tolist()}
    out["scores"] = dejavu_scores(correct["target"], correct["reference"])
    return out
