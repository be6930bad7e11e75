"""The analysis tools' cores: RELAX, CLS attention maps, patch-similarity maps, embedding
maps; and the command on a checkpoint."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl.analysis import embed_map, maps, relax
from jax_ssl.models import resnet, vit

KEY = jax.random.PRNGKey(0)


def test_relax_masks_are_smooth_grids_of_the_stated_density():
    masks = np.asarray(relax.relax_masks(KEY, 2000, (28, 28), keep_probability=0.3))
    assert masks.shape == (2000, 28, 28) and masks.min() >= 0.0 and masks.max() <= 1.0
    assert abs(masks.mean() - 0.3) < 0.02
    # smooth: neighbouring pixels are close, cells of 4 px
    assert np.abs(np.diff(masks, axis=2)).max() <= 0.5 + 1e-6
    with pytest.raises(ValueError, match="keep_probability"):
        relax.relax_masks(KEY, 2, (8, 8), keep_probability=0.0)


def test_relax_puts_the_importance_on_the_region_the_embedding_reads():
    """An embedding of the top-left 7×7 pixels only: masking them moves it, masking the
    rest does not, so the importance is highest there and lowest far from it."""
    image = jax.random.uniform(KEY, (28, 28, 3), minval=0.5, maxval=1.5)

    def embed(images):
        region = images[:, :7, :7].reshape(images.shape[0], -1)
        return jnp.concatenate([region, 0.3 * jnp.ones((images.shape[0], 1))], axis=1)
    out = relax.relax(embed, image, jax.random.PRNGKey(1), num_masks=600, batch_size=100)
    importance = np.asarray(out["importance"])
    inside, far = importance[:7, :7].mean(), importance[-10:, -10:].mean()
    assert inside > far + 0.02, (inside, far)
    assert out["similarities"].shape == (600,)
    assert np.all(np.asarray(out["uncertainty"]) >= 0)
    # U-RELAX: the importance where the uncertainty is at most its median, 0 elsewhere
    kept = np.asarray(out["uncertainty"]) <= np.median(np.asarray(out["uncertainty"]))
    np.testing.assert_array_equal(np.asarray(out["u_relax"]), importance * kept)


def test_relax_statistics_are_the_weighted_mean_and_squared_deviations():
    """R = Σ m s / Σ m and U = Σ m (s − R)² over the masks, as the official running
    estimator ends (checked against a direct computation from the same masks)."""
    image = jax.random.normal(KEY, (8, 8, 3))
    weights = jax.random.normal(jax.random.PRNGKey(2), (8 * 8 * 3, 5))

    def embed(images):
        return jnp.tanh(images.reshape(images.shape[0], -1) @ weights)
    out = relax.relax(embed, image, jax.random.PRNGKey(3), num_masks=200, batch_size=50,
                      num_cells=3)
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    masks = jnp.concatenate([relax.relax_masks(k, 50, (8, 8), num_cells=3) for k in keys])
    s = relax._cosine(embed(image[None] * masks[..., None]), embed(image[None]))
    np.testing.assert_allclose(out["similarities"], s, rtol=1e-5, atol=1e-6)
    mean = jnp.einsum("n,nhw->hw", s, masks) / (relax.EPSILON + masks.sum(0))
    spread = jnp.einsum("nhw,nhw->hw", masks, (s[:, None, None] - mean) ** 2)
    np.testing.assert_allclose(out["importance"], mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out["uncertainty"], spread, rtol=1e-3, atol=1e-6)


def tiny_vit(**kw):
    return vit.VisionTransformer(patch_size=4, embed_dim=16, depth=2, num_heads=2,
                                 image_size=16, **kw)


@pytest.mark.parametrize("registers", [0, 2])
def test_cls_attention_rows_and_the_kept_mass(registers):
    backbone = tiny_vit(num_registers=registers)
    images = jax.random.normal(KEY, (2, 16, 16, 3))
    variables = backbone.init(KEY, images)
    attention = np.asarray(maps.cls_attention(backbone, variables, images))
    assert attention.shape == (2, 2, 4, 4)
    full = backbone.apply(variables, images, return_attention=True)["attention"][:, :, 0]
    np.testing.assert_allclose(full.sum(-1), 1.0, atol=1e-5)  # the whole CLS row
    np.testing.assert_allclose(attention.sum((-2, -1)),
                               full[..., 1 + registers:].sum(-1), atol=1e-6)
    kept = maps.keep_mass(attention, 0.6)
    mass = (attention * kept).sum((-2, -1)) / attention.sum((-2, -1))
    assert np.all(mass >= 0.6 - 1e-9)
    # the smallest such set: without its least-attended patch it holds less than 60%
    least = np.where(kept, attention, np.inf).reshape(2, 2, -1).min(-1)
    assert np.all(mass - least / attention.sum((-2, -1)) < 0.6)


def test_patch_similarity_is_one_for_the_query_and_within_bounds():
    backbone = tiny_vit()
    images = jax.random.normal(KEY, (3, 16, 16, 3))
    variables = backbone.init(KEY, images)
    features = maps.patch_features(backbone, variables, images)
    patch = maps.pixel_to_patch((9, 14), (16, 16), 4)
    assert patch == (2, 3)
    similarity = np.asarray(maps.similarity_maps(features, 1, patch))
    assert similarity.shape == (3, 4, 4)
    np.testing.assert_allclose(similarity[1, 2, 3], 1.0, rtol=1e-5)
    assert similarity.min() >= -1.0 and similarity.max() <= 1.0


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="outside the 16x16 pixels"):
        maps.pixel_to_patch((16, 0), (16, 16), 4)
    net = resnet.RESNETS["resnet18"](cifar_stem=True, width=4)
    with pytest.raises(ValueError, match="needs a ViT's patch tokens"):
        maps.patch_features(net, {}, jnp.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError, match="has none"):
        maps.cls_attention(tiny_vit(class_token=False, pos_embed="sincos"), {},
                           jnp.zeros((1, 16, 16, 3)))
    with pytest.raises(ValueError, match="fraction"):
        maps.keep_mass(np.ones((2, 2)), 0.0)


def test_embed_map_knn_accuracy_and_trustworthiness_by_hand():
    # k = 3 on a line: the point at 3 (label 1) sees 0, 1, 2 (label 0) and the point at
    # 12 (label 0) sees 10, 11 (label 1) and 3: those two are wrong, the five others right.
    line = np.array([[0.0], [1], [2], [3], [10], [11], [12]]) * [1.0, 0.0]
    assert embed_map.knn_accuracy(line, np.array([0, 0, 0, 1, 1, 1, 0]), k=3) == (
        pytest.approx(5 / 7))
    # k = 1: each point's nearest other point has the other label (itself would not)
    line = np.array([[0.0], [1], [5], [7]]) * [1.0, 0.0]
    assert embed_map.knn_accuracy(line, np.array([0, 1, 1, 0]), k=1) == 0.0
    features = np.random.default_rng(0).standard_normal((60, 8))
    assert embed_map.trustworthiness(features, features) == pytest.approx(1.0)
    shuffled = features[np.random.default_rng(1).permutation(60)]
    assert embed_map.trustworthiness(features, shuffled) < 0.6


def test_embed_map_corruptions_are_the_stated_ones():
    rng = np.random.default_rng(0)
    x = embed_map.unit_rows(rng.standard_normal((400, 64)))
    with_outliers = embed_map.with_outliers(x, rng)
    assert with_outliers.shape == (420, 64)  # 5% more
    np.testing.assert_array_equal(with_outliers[:400], x)
    np.testing.assert_allclose(np.linalg.norm(with_outliers, axis=1), 1.0, rtol=1e-6)
    noisy = embed_map.with_noise(x, rng)
    np.testing.assert_allclose(np.linalg.norm(noisy, axis=1), 1.0, rtol=1e-6)
    # noise of norm 0.5 beside a unit vector turns it by atan(0.5): a chord of 0.46
    moved = np.linalg.norm(noisy - x, axis=1)
    assert 0.42 < moved.mean() < 0.50 and moved.min() > 0.2


@pytest.mark.slow  # ~70 s (UMAP's numba compile, t-SNE, Mapper); the parts above are fast
def test_embed_maps_keep_well_separated_clusters_and_say_what_they_cost(tmp_path):
    rng = np.random.default_rng(0)
    centres = np.eye(16)[:4] * 3.0
    labels = np.repeat(np.arange(4), 40)
    features = centres[labels] + 0.1 * rng.standard_normal((160, 16))
    out = embed_map.compare(features, labels, sizes=(40, 160), log=lambda _: None)
    assert out["features"]["kNN"] == 1.0 and out["points"] == 160
    assert set(out["maps"]) == set(embed_map.MAPS)
    for method, result in out["maps"].items():
        assert result["points"].shape == (160, 2), method
        assert result["trustworthiness"] > 0.9 and result["kNN"] > 0.95, (method, result)
        for corruption in ("outliers", "noise"):
            assert result[corruption]["kNN"] > 0.9, (method, corruption, result)
        assert sorted(result["seconds"]) == [40, 160]
        assert all(seconds > 0 for seconds in result["seconds"].values())
    graph = out["maps"]["Mapper"]["graph"]
    assert graph["covered"] > 0.9 and len(graph["positions"]) == len(graph["nodes"])
    assert all(len(set(labels[members])) == 1 for members in graph["nodes"])  # no mixing
    # each point at the mean position of its nodes
    placed = np.zeros((160, 2))
    count = np.zeros(160)
    for node, members in enumerate(graph["nodes"]):
        placed[members] += graph["positions"][node]
        count[members] += 1
    covered = count > 0
    np.testing.assert_allclose(out["maps"]["Mapper"]["points"][covered],
                               placed[covered] / count[covered, None], rtol=1e-6)
    # and the command on a checkpoint (here: UMAP compiles once per process, ~15 s)
    import json

    from jax_ssl.analysis import job
    workdir = _workdir(tmp_path, "vit")
    map_out = job.run("embed-map", str(workdir), num_points=40)
    assert len(map_out["pictures"]) == 2
    for path in map_out["pictures"]:
        assert (workdir / "analysis" / path.split("/")[-1]).stat().st_size > 1000
    saved = json.loads((workdir / "analysis" / "embed_map_step_3.json").read_text())
    assert saved["step"] == 3 and saved["tool"] == "embed-map"
    assert map_out["points"] == 40 and set(map_out["maps"]) == set(embed_map.MAPS)
    assert sorted(map_out["maps"]["UMAP"]["seconds"], key=int) == ["12", "20", "40"]
    assert np.asarray(map_out["coordinates"]["t-SNE"]).shape == (40, 2)
    table = job.format_table(map_out).splitlines()
    assert table[0].endswith("| s @ 12 | s @ 20 | s @ 40 |") and len(table) == 2 + 4 + 2
    umap_row = next(row for row in table if row.startswith("| UMAP |")).split(" | ")
    assert float(umap_row[2]) == pytest.approx(map_out["maps"]["UMAP"]["kNN"], abs=5e-4)


def test_embed_map_without_its_extra_says_how_to_get_it(monkeypatch, tmp_path):
    import sys

    from jax_ssl.analysis import job
    monkeypatch.setitem(sys.modules, "umap", None)  # import umap → ImportError
    with pytest.raises(ImportError, match=r"umap-learn.*pip install 'jax-ssl\[analysis\]'"):
        embed_map.require_libraries()
    with pytest.raises(ImportError, match="umap-learn"):  # before looking for a checkpoint
        job.run("embed-map", str(tmp_path / "no_run"))


# --- The command on a checkpoint (saved without training: nothing to compile but the
# tools).

def _workdir(tmp_path, backbone: str):
    import pathlib

    from test_train import tiny_config

    from jax_ssl import checkpoints, methods
    config = tiny_config("simclr")
    config.data.crop_size = config.data.eval_resize_size = 16
    if backbone == "resnet":
        config.model.backbone = "resnet18"
        config.model.backbone_kwargs = dict(cifar_stem=True, width=4)
    views = np.zeros((2, 2, 16, 16, 3), np.float32)
    params, state = jax.jit(lambda k: methods.get("simclr").init(k, config, {"views": views}))(
        KEY)
    workdir = str(tmp_path / backbone)
    manager = checkpoints.manager(workdir, save_every=1, keep=2)
    checkpoints.save(manager, 3, {"step": np.int32(3), "params": params,
                                  "method_state": state}, config, force=True)
    manager.wait_until_finished()
    manager.close()
    return pathlib.Path(workdir)


def test_the_tools_write_their_pictures_and_numbers(tmp_path):
    import json

    from jax_ssl.analysis import job
    workdir = _workdir(tmp_path, "vit")
    relax_out = job.run("relax", str(workdir), num_images=2, num_masks=100)
    attention_out = job.run("attention", str(workdir), num_images=2)
    similarity_out = job.run("patch-similarity", str(workdir), num_images=2, pixel=(3, 12),
                             query_image=1)
    for out, tool, pictures in ((relax_out, "relax", 2), (attention_out, "attention", 1),
                                (similarity_out, "patch_similarity", 1)):
        assert len(out["pictures"]) == pictures
        for path in out["pictures"]:
            assert (workdir / "analysis" / path.split("/")[-1]).stat().st_size > 1000
        saved = json.loads((workdir / "analysis" / f"{tool}_step_3.json").read_text())
        assert saved["step"] == 3 and saved["tool"] == out["tool"]
    assert np.asarray(relax_out["images"][0]["importance"]).shape == (16, 16)
    assert np.asarray(attention_out["attention"]).shape == (2, 2, 2, 2)
    similarity = np.asarray(similarity_out["similarity"])
    assert similarity_out["patch"] == [0, 1] and similarity[1, 0, 1] == pytest.approx(1.0)


def _folder_with_copies(root, images, copies):
    """images [N, H, W] uint8 as root/<class>/<i>.png, then each index in ``copies``
    saved again as copy_<i>.png: a pool with planted exact duplicates."""
    from PIL import Image
    (root / "pool").mkdir(parents=True)
    for i, image in enumerate(images):
        Image.fromarray(image).save(root / "pool" / f"{i:03d}.png")
    for i in copies:
        Image.fromarray(images[i]).save(root / "pool" / f"copy_{i:03d}.png")
    return f"folder:{root}"


def test_curate_finds_planted_copies_and_lists_the_retrieved_files(tmp_path):
    from jax_ssl.analysis import job
    from jax_ssl.data import sources
    workdir = _workdir(tmp_path, "vit")
    digits = sources.digits("test", image_size=16)
    images = np.stack([digits.load(np.int64(i)).numpy()[..., 0] for i in range(24)])
    pool = _folder_with_copies(tmp_path / "pool_root", images, copies=[2, 5])
    # exact copies only: a random-init ViT finds many different digits alike
    options = dict(pool=pool, seed_set="digits", seed_split="test", threshold=0.9999, k=3)
    out = job.run("curate", str(workdir), curation=options)
    assert out["pool_size"] == 26 and out["seed_set_size"] == 299
    groups = [sorted(p.rsplit("/", 1)[1] for p in g) for g in out["duplicate_group_paths"]]
    assert ["002.png", "copy_002.png"] in groups and ["005.png", "copy_005.png"] in groups
    assert len(out["removed"]) == len(out["duplicate_groups"]) == len(groups)
    listing = (workdir / "analysis" / "curate_step_3_curated.txt").read_text().splitlines()
    assert [int(line.split("\t")[0]) for line in listing] == out["curated"]
    assert all(line.split("\t")[1].endswith(".png") for line in listing)
    with pytest.raises(ValueError, match="curate needs --pool"):
        job.run("curate", str(workdir), curation={"pool": pool})


def test_dejavu_attacks_from_npz_or_folder_boxes_and_writes_its_curves(tmp_path):
    import json

    from jax_ssl.analysis import dejavu, job
    from jax_ssl.data import sources
    digits = sources.digits("train", image_size=12)
    objects = np.stack([digits.load(np.int64(i)).numpy()[..., 0] for i in range(60)])
    images, boxes = dejavu.scenes(objects, size=32, seed=0)
    np.savez(tmp_path / "attack.npz", images=images[:20], labels=digits.labels[:20],
             boxes=boxes[:20])
    np.savez(tmp_path / "public.npz", images=images[20:], labels=digits.labels[20:60])
    target, reference = _workdir(tmp_path / "t", "vit"), _workdir(tmp_path / "r", "vit")
    options = dict(reference_workdir=str(reference), attack_set=f"npz:{tmp_path}/attack.npz",
                   public_set=f"npz:{tmp_path}/public.npz", k=5)
    # the images whose background has a crop longer than 16 px: only some of them
    expected = [i for i in range(20) if dejavu.periphery_box([boxes[i].tolist()], 32, 32, 16)]
    assert 0 < len(expected) < 20
    out = job.run("dejavu", str(target), memorisation={**options, "min_side": 16})
    assert out["attacked"] == expected and out["attacked_of"] == 20
    assert set(out["scores"]) >= {"memorised", "target_accuracy", "reference_accuracy"}
    assert len(out["curves"]["reference"]) == len(dejavu.FRACTIONS)
    assert (target / "analysis" / "dejavu_step_3_curves.png").stat().st_size > 1000
    saved = json.loads((target / "analysis" / "dejavu_step_3.json").read_text())
    assert saved["models"]["reference"]["workdir"] == str(reference)
    # the same images as a folder with ImageNet-style box files: the same crops, votes
    from PIL import Image
    order = sorted(range(20), key=lambda i: (digits.labels[i], i))  # the folder's order
    for i in range(20):
        label = digits.labels[i]
        (tmp_path / "folder" / str(label)).mkdir(parents=True, exist_ok=True)
        (tmp_path / "boxes" / "Annotation" / str(label)).mkdir(parents=True, exist_ok=True)
        Image.fromarray(images[i]).save(tmp_path / "folder" / str(label) / f"{i:02d}.png")
        y0, x0, y1, x1 = boxes[i]
        size = "" if i == 0 else "<size><width>32</width><height>32</height></size>"
        (tmp_path / "boxes" / "Annotation" / str(label) / f"{i:02d}.xml").write_text(
            f"<annotation>{size}<object><bndbox><xmin>{x0}</xmin><ymin>{y0}</ymin>"
            f"<xmax>{x1}</xmax><ymax>{y1}</ymax></bndbox></object></annotation>")
    for label in range(10):
        (tmp_path / "folder" / str(label)).mkdir(exist_ok=True)
    folder = job.run("dejavu", str(target), memorisation={
        **options, "attack_set": f"folder:{tmp_path}/folder", "boxes": str(tmp_path / "boxes"),
        "min_side": 16})

    def by_image(result, image_of):
        return {image_of[a]: (c, result["target"]["confidence"][j])
                for j, (a, c) in enumerate(zip(result["attacked"], result["crops"],
                                               strict=True))}
    assert by_image(folder, order) == by_image(out, range(20))
    (tmp_path / "boxes" / "Annotation" / str(digits.labels[3]) / "03.xml").unlink()
    with pytest.raises(FileNotFoundError, match="03.png has no box file"):
        job.run("dejavu", str(target), memorisation={
            **options, "attack_set": f"folder:{tmp_path}/folder",
            "boxes": str(tmp_path / "boxes")})
    # the projector head's output (the paper's default): SimCLR's projection, not the CLS
    projected = job.run("dejavu", str(target), memorisation={
        **options, "min_side": 16, "embedding": "projector"})
    assert projected["embedding"] == "projector" and projected["attacked"] == expected
    from jax_ssl.evaluate import job as eval_job
    config, _, saved = eval_job.restore_run(str(target))
    images16 = np.zeros((2, 16, 16, 3), np.float32)
    assert job.projector_embedder(config, saved)(images16).shape == (
        2, config.simclr.projector_dim)
    assert projected["target"]["confidence"] != out["target"]["confidence"]
    config.method = "mae"
    with pytest.raises(ValueError, match="mae's network has no projector head"):
        job.projector_embedder(config, saved)
    with pytest.raises(ValueError, match="needs --reference_workdir"):
        job.run("dejavu", str(target), memorisation={"attack_set": options["attack_set"]})
    with pytest.raises(ValueError, match="no 'boxes' array"):
        job.run("dejavu", str(target), memorisation={
            **options, "attack_set": f"npz:{tmp_path}/public.npz"})
    with pytest.raises(ValueError, match="need their object boxes"):
        job.run("dejavu", str(target), memorisation={**options, "attack_set": "digits"})


def test_the_command_refuses_what_it_cannot_do(tmp_path):
    from jax_ssl.analysis import job
    workdir = str(_workdir(tmp_path, "resnet"))
    with pytest.raises(ValueError, match="needs a ViT's patch tokens"):
        job.run("attention", workdir)
    with pytest.raises(ValueError, match="unknown tool"):
        job.run("gradcam", workdir)
    vit_workdir = str(_workdir(tmp_path, "vit"))
    with pytest.raises(ValueError, match="outside the 16x16 pixels"):
        job.run("patch-similarity", vit_workdir, num_images=1, pixel=(20, 3))
    with pytest.raises(ValueError, match="query_image"):
        job.run("patch-similarity", vit_workdir, num_images=2, query_image=2)
