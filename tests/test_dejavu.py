"""The Déjà vu test: periphery crops, the kNN attack, the scores, the synthetic scenes,
ImageNet's box files and the official partition."""
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
    crops, attacked = dejavu.periphery_boxes(boxes[:, None], [(64, 64)] * 6, min_side=8)
    assert crops.shape == (6, 4) and attacked.tolist() == list(range(6))


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
    crop_boxes, attacked = dejavu.periphery_boxes(boxes[:50, None], [(48, 48)] * 50,
                                                  min_side=8)
    crops = [images[i, y0:y1, x0:x1] for i, (y0, x0, y1, x1) in zip(attacked, crop_boxes,
                                                                    strict=True)]
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
        dejavu.periphery_boxes(boxes[:2, None], [(48, 48)] * 2, min_side=40)


VOC = """<annotation><folder>n01440764</folder><filename>n01440764_18</filename>
<size><width>500</width><height>375</height><depth>3</depth></size>
<object><name>n01440764</name><bndbox><xmin>60</xmin><ymin>98</ymin><xmax>310</xmax>
<ymax>250</ymax></bndbox></object>
<object><name>n01440764</name><bndbox><xmin>400</xmin><ymin>10</ymin><xmax>499</xmax>
<ymax>374</ymax></bndbox></object></annotation>"""


def test_imagenet_box_files_read_as_the_official_attack_reads_them():
    boxes, shape = dejavu.voc_boxes(VOC)
    assert boxes == [(98, 60, 250, 310), (10, 400, 374, 499)] and shape == (375, 500)
    # the strips: x 0-60 (60 wide), 60-310 (98 rows above the box, 125 below: 250 wide),
    # 310-400 (90 wide, all rows), 400-499 (10 rows above, 1 below): below the first box
    assert dejavu.periphery_box(boxes, *shape, dejavu.OFFICIAL_MIN_SIDE) == (250, 60, 375, 310)
    assert dejavu.periphery_box(boxes, *shape, 125) is None
    assert dejavu.voc_boxes(VOC.replace("<size><width>500</width><height>375</height>",
                                        "<size>"))[1] is None


def test_partition_splits_each_class_as_the_official_script_does():
    # class 0: 10 images, 6 with boxes; class 1: 8 images, 2 with boxes; class 2: 4, none
    labels = np.array([0] * 10 + [1] * 8 + [2] * 4)
    annotated = np.zeros(22, bool)
    annotated[[0, 2, 3, 5, 8, 9, 12, 17]] = True
    parts = dejavu.partition(labels, annotated, per_class=2)
    # class 0: bbox_A the first 2 boxed, bbox_B the next 2, no shared (2 boxed each)
    # class 1: 1 boxed each, 1 shared; class 2: none boxed, 2 shared; the rest public
    assert parts["bbox_A"].tolist() == [0, 2, 12]
    assert parts["bbox_B"].tolist() == [3, 5, 17]
    assert parts["shared"].tolist() == [10, 18, 19]
    assert parts["public"].tolist() == [1, 4, 6, 7, 8, 9, 11, 13, 14, 15, 16, 20, 21]
    every = np.concatenate(list(parts.values()))
    assert sorted(every.tolist()) == list(range(22))  # disjoint, and nothing lost
    for name in ("bbox_A", "bbox_B"):  # A and B have per_class images of each class
        train = np.concatenate([parts[name], parts["shared"]])
        assert np.bincount(labels[train]).tolist() == [2, 2, 2]


def test_link_partition_writes_the_sets_as_folders_of_links(tmp_path):
    from PIL import Image

    from jax_ssl.data import sources
    # an ImageNet-like train folder: 3 classes of 6 images; boxes for 4, 2 and 0 of them
    boxed = {"n01": [0, 1, 3, 5], "n02": [2, 4], "n03": []}
    for name, with_boxes in boxed.items():
        (tmp_path / "train" / name).mkdir(parents=True)
        (tmp_path / "bbox" / "Annotation" / name).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (8, 8)).save(tmp_path / "train" / name / f"{name}_{i}.JPEG",
                                          format="JPEG")
            if i in with_boxes:
                (tmp_path / "bbox" / "Annotation" / name / f"{name}_{i}.xml").write_text(VOC)
    (tmp_path / "val").mkdir()
    sizes = dejavu.link_partition(str(tmp_path / "train"), str(tmp_path / "bbox"),
                                  str(tmp_path / "out"), per_class=2, public_per_class=3,
                                  val_dir=str(tmp_path / "val"))
    # public, per class at 3: n01 6 - 2·2 boxed - 1 shared, n02 6 - 2 - 2, n03 6 - 3
    assert sizes == {"A": 6, "B": 6, "attack_A": 3, "attack_B": 3, "public": 6}

    def files(set_name):
        return sorted(p.name for p in (tmp_path / "out" / set_name / "train").glob("*/*"))
    assert files("attack_A") == ["n01_0.JPEG", "n01_1.JPEG", "n02_2.JPEG"]
    assert files("attack_B") == ["n01_3.JPEG", "n01_5.JPEG", "n02_4.JPEG"]
    assert set(files("A")) == set(files("attack_A")) | {"n02_0.JPEG", "n03_0.JPEG", "n03_1.JPEG"}
    assert not set(files("public")) & (set(files("A")) | set(files("B")))
    attacked = sources.get_source(f"folder:{tmp_path}/out/attack_A/{{split}}", "train")
    assert attacked.labels.tolist() == [0, 0, 1] and attacked.num_classes == 3
    assert (tmp_path / "out" / "A" / "val").resolve() == (tmp_path / "val").resolve()
    with pytest.raises(FileNotFoundError, match="no box files"):
        dejavu.link_partition(str(tmp_path / "train"), str(tmp_path / "val"),
                              str(tmp_path / "out2"), per_class=2)
