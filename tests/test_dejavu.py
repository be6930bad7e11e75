"""The Déjà vu test: periphery crops, the kNN attack, the scores, the synthetic scenes."""
import numpy as np
import pytest

from jax_ssl import parallel
from jax_ssl.analysis import dejavu


def test_periphery_box_by_hand():
    # one box over x 10-38, y 20-48 of a 64x64 image: the strips x 0-10 (10 wide), 10-38
    # (above it 20 tall, below 16) and 38-64 (26 wide, whole height) -> the last
    box = [(20, 10, 48, 38)]
    assert dejavu.periphery_box(box, 64, 64, min_side=16) == (0, 38, 64, 64)
    assert dejavu.periphery_box(box, 64, 64, min_side=26) is None  # must exceed it
    # a second box over x 40-60, y 8-50 leaves that strip gaps of 8 and 14 rows, and
    # the strips x 38-40 and 60-64 are 2 and 4 wide: above the first box wins with 20
    boxes = [(20, 10, 48, 38), (8, 40, 50, 60)]
    assert dejavu.periphery_box(boxes, 64, 64, min_side=4) == (0, 10, 20, 38)
    assert dejavu.default_min_side(400, 333) == 83  # ImageNet-sized: ~ the official 100 px


def test_periphery_crops_never_overlap_their_boxes():
    rng = np.random.default_rng(0)
    for _ in range(300):
        boxes = []
        for _ in range(rng.integers(1, 4)):
            y0, x0 = rng.integers(0, 60, 2)
            boxes.append((y0, x0, y0 + rng.integers(1, 40), x0 + rng.integers(1, 40)))
        boxes = [(y0, x0, min(y1, 64), min(x1, 64)) for y0, x0, y1, x1 in boxes]
        crop = dejavu.periphery_box(boxes, 64, 64, min_side=2)
        if crop is None:
            continue
        y0, x0, y1, x1 = crop
        assert 0 <= y0 < y1 <= 64 and 0 <= x0 < x1 <= 64 and min(y1 - y0, x1 - x0) > 2
        for b0, a0, b1, a1 in boxes:
            assert y1 <= b0 or b1 <= y0 or x1 <= a0 or a1 <= x0, (crop, boxes)


def test_knn_votes_are_the_l2_nearest_on_eight_devices():
    rng = np.random.default_rng(1)
    public = rng.standard_normal((203, 8)) * rng.uniform(0.1, 3, (203, 1))  # norms differ
    labels = rng.integers(0, 4, 203)
    queries = rng.standard_normal((17, 8))
    votes = dejavu.knn_votes(queries, public, labels, parallel.data_mesh(), num_classes=4,
                             k=7)
    distance = ((queries[:, None] - public[None]) ** 2).sum(-1)
    nearest = np.argsort(distance, axis=1)[:, :7]
    expected = np.stack([np.bincount(labels[row], minlength=4) for row in nearest])
    np.testing.assert_array_equal(votes, expected)


def test_predictions_confidence_scores_and_curve_by_hand():
    labels, confidence = dejavu.predict(np.array([[100, 0, 0, 0], [25, 25, 25, 25],
                                                  [10, 60, 30, 0]]))
    assert labels.tolist() == [0, 0, 1]
    np.testing.assert_allclose(confidence[:2], [0.0, -np.log(4)], atol=1e-12)
    p = np.array([0.1, 0.6, 0.3])
    np.testing.assert_allclose(confidence[2], np.sum(p * np.log(p)))
    scores = dejavu.dejavu_scores([1, 1, 0, 0, 1], [0, 1, 1, 0, 0])
    assert scores["memorised"] == 0.4 and scores["forgotten"] == 0.2
    assert scores["correlated"] == 0.2 and scores["target_accuracy"] == 0.6
    same = [1, 0, 1, 1]
    assert dejavu.dejavu_scores(same, same)["memorised"] == 0.0
    # most confident first: correct, wrong, correct, wrong
    curve = dejavu.confidence_curve([0, 1, 1, 0], [-3.0, -1.0, -0.1, -2.0], (0.25, 0.5, 1.0))
    np.testing.assert_allclose(curve, [1.0, 1.0, 0.5])


def test_scenes_paste_each_object_inside_its_box_on_its_own_background():
    rng = np.random.default_rng(2)
    objects = np.zeros((6, 28, 28), np.uint8)
    objects[:, 5:20, 8:14] = rng.integers(1, 256, (6, 15, 6))
    images, boxes = dejavu.scenes(objects, size=64, seed=3)
    assert images.shape == (6, 64, 64, 3) and images.dtype == np.uint8
    assert ((boxes[:, 2] - boxes[:, 0]) == 15).all() and ((boxes[:, 3] - boxes[:, 1]) == 6).all()
    assert not np.array_equal(images[0], images[1])
    again, _ = dejavu.scenes(objects[3:], size=64, seed=3, first_index=3)
    np.testing.assert_array_equal(again, images[3:])  # a split can be made in parts
    crops, attacked = dejavu.periphery_crops(images, boxes[:, None], size=16, min_side=8)
    assert crops.shape == (6, 16, 16, 3) and attacked.tolist() == list(range(6))


def _lookup_model(memory: dict, dim: int = 10, seed: int = 0):
    """A 'model' that embeds an image it remembers (by its bytes) at its label's corner
    and anything else at a random point: it memorised exactly ``memory``."""
    def embed(images):
        rng = np.random.default_rng(seed)
        out = rng.standard_normal((len(images), dim))
        for i, image in enumerate(images):
            if (label := memory.get(np.asarray(image).tobytes())) is not None:
                out[i] = 10 * np.eye(dim)[label]
        return out
    return embed


def test_a_target_that_memorised_its_images_scores_and_an_identical_reference_does_not():
    rng = np.random.default_rng(4)
    objects = np.zeros((150, 28, 28), np.uint8)
    objects[:, 6:22, 6:22] = 200
    labels = rng.integers(0, 10, 150)
    images, boxes = dejavu.scenes(objects, size=48, seed=5)
    crops, attacked = dejavu.periphery_crops(images[:50], boxes[:50, None], size=16,
                                             min_side=8)
    public, public_labels = images[50:].astype(np.float32), labels[50:]
    knows_public = {p.tobytes(): int(y) for p, y in zip(public, public_labels, strict=True)}
    knows_a = {c.tobytes(): int(y) for c, y in zip(crops, labels[attacked], strict=True)}
    target = _lookup_model({**knows_public, **knows_a})
    reference = _lookup_model(knows_public, seed=1)
    kwargs = dict(mesh=parallel.data_mesh(), num_classes=10, k=5)
    embedded = {name: (model(crops), model(public)) for name, model in
                (("target", target), ("reference", reference))}
    out = dejavu.attack(embedded, labels[attacked], public_labels, **kwargs)
    assert out["scores"]["target_accuracy"] == 1.0
    assert out["scores"]["memorised"] > 0.7  # the reference guesses at ~chance
    assert len(out["curves"]["target"]) == len(dejavu.FRACTIONS)
    same = dejavu.attack({"target": embedded["target"], "reference": embedded["target"]},
                         labels[attacked], public_labels, **kwargs)
    assert same["scores"]["memorised"] == 0.0
    with pytest.raises(ValueError, match="lower min_side"):
        dejavu.periphery_crops(images[:2], boxes[:2, None], size=16, min_side=40)
