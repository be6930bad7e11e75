"""Evaluation extras: per-layer probes, the official linear-probe protocols, watch mode,
bfloat16 feature extraction."""
import json
import pathlib
import re
import shutil
import threading

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from test_train import damage_latest, tiny_config

from jax_ssl import checkpoints, methods, models, parallel
from jax_ssl.data import recipes, sources
from jax_ssl.evaluate import features, job, labels, layers, protocols, watch
from jax_ssl.methods import common
from jax_ssl.models.resnet import BasicBlock, Bottleneck, ResNet

SIZE = 16
NORM = ((0.5,) * 3, (0.5,) * 3)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tiny_vit(depth=2, **kwargs):
    return models.backbone("vit_ti16", patch_size=8, image_size=SIZE, embed_dim=32,
                           depth=depth, num_heads=2, **kwargs)


def two_stage_resnet():
    """A ResNet of two BasicBlock stages (4 and 8 channels): per-layer probes in seconds."""
    return ResNet(stage_sizes=(1, 1), block_cls=BasicBlock, width=4)


def init(backbone, seed=0):
    # jitted: op-by-op initialisation compiles every primitive separately, slowly on CPU
    return jax.jit(lambda: backbone.init(jax.random.PRNGKey(seed),
                                         np.zeros((1, SIZE, SIZE, 3), np.float32),
                                         train=False))()


def apply(backbone, variables, images, **kwargs):
    return jax.jit(lambda v, x: backbone.apply(v, x, train=False, **kwargs))(variables, images)


@pytest.fixture(scope="module")
def digits():
    """16-px digits: train and test sources, the eval and probe-training recipes."""
    train_source = sources.get_source("digits", "train", image_size=SIZE)
    test_source = sources.get_source("digits", "test", image_size=SIZE)
    eval_recipe = recipes.make_recipe("eval", size=SIZE, resize_size=SIZE, normalization=NORM)
    train_recipe = recipes.make_recipe("mae", size=SIZE, scale=job.PROBE_CROP_SCALE,
                                       normalization=NORM)
    return protocols.ProbeData(train_source, test_source, train_recipe, eval_recipe,
                               parallel.data_mesh())


# ----------------------------------------------------------------------------------------
# ResNet stages and per-layer probes
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("block, widths", [(BasicBlock, [4, 8, 16, 32]),
                                           (Bottleneck, [16, 32, 64, 128])])
def test_resnet_stage_outputs_have_the_stage_widths(block, widths):
    # ResNet-18's / ResNet-50's blocks, one per stage (the stage outputs do not depend on
    # how many blocks a stage has, and one compiles much faster)
    net = ResNet(stage_sizes=(1, 1, 1, 1), block_cls=block, width=4)
    variables = init(net)
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    stages = apply(net, variables, images, return_stages=True)
    assert [s.shape for s in stages] == [(2, 8 // 2 ** i, 8 // 2 ** i, w)
                                         for i, w in enumerate(widths)]
    np.testing.assert_allclose(jnp.mean(stages[-1], axis=(1, 2)), apply(net, variables, images),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("vit_token", ["cls", "mean"])
def test_layer_embedder_gives_every_block_and_ends_at_the_backbone_output(vit_token):
    vit = tiny_vit(depth=3)
    variables = init(vit)
    images = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    per_layer = jax.jit(layers.layer_embedder(vit, variables, vit_token=vit_token))(images)
    assert len(per_layer) == 3 and all(x.shape == (2, 32) for x in per_layer)
    final = apply(vit, variables, images)
    expected = final["cls"] if vit_token == "cls" else final["patch_tokens"].mean(1)
    np.testing.assert_allclose(per_layer[-1], expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(per_layer[0], per_layer[1])
    assert layers.layer_names(vit) == ["block 1", "block 2", "block 3"]


@pytest.mark.parametrize("kind", ["vit", "resnet"])
def test_per_layer_probe_reports_each_layer_and_plots_them(kind, digits, tmp_path):
    net = tiny_vit() if kind == "vit" else two_stage_resnet()
    result = layers.per_layer_probe(net, init(net), digits.train_source, digits.test_source,
                                    digits.eval_recipe, digits.mesh, batch_size=256,
                                    weight_decays=(1e-4,))
    expected = ["block 1", "block 2"] if kind == "vit" else ["stage 1", "stage 2"]
    assert [r["layer"] for r in result["layers"]] == expected
    for row in result["layers"]:
        assert 0.0 <= row["kNN"] <= 1.0 and 0.0 <= row["linear"] <= 1.0
    # even random features of a deep-enough layer beat chance (10%) on digits
    assert max(r["linear"] for r in result["layers"]) > 0.3
    for protocol, best in result["best"].items():
        assert best["top1"] == max(r[protocol] for r in result["layers"])
    assert "per-layer best linear" in layers.format_layer_table(result)
    png = pathlib.Path(layers.plot_layers(result, str(tmp_path / "layers.png")))
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE and len(data) > 1000


def test_layer_probes_report_progress_per_layer(monkeypatch):
    # a stand-in linear probe (its result: a thousandth of the width): the lines are the
    # subject here, and the L-BFGS fits would only take compile time
    monkeypatch.setattr(layers.linear, "linear_probe",
                        lambda x, *args, **kwargs: {"top1": x.shape[1] / 1000})
    rng = np.random.default_rng(0)
    train_y, test_y = rng.integers(0, 3, 60), rng.integers(0, 3, 30)
    train_x = (rng.normal(size=(60, 4)), rng.normal(size=(60, 8)))
    test_x = (rng.normal(size=(30, 4)), rng.normal(size=(30, 8)))
    lines = []
    result = layers.probe_layers(two_stage_resnet(), train_x, train_y, test_x, test_y,
                                 num_classes=3, log=lines.append)
    assert [row["linear"] for row in result["layers"]] == [0.004, 0.008]
    assert len(lines) == 2
    for i, (line, row) in enumerate(zip(lines, result["layers"], strict=True)):
        assert re.fullmatch(rf"probe layer {i + 1}/2 stage {i + 1}: "
                            rf"kNN {100 * row['kNN']:.1f}%, linear {100 * row['linear']:.1f}% "
                            r"\(\d+ s\)", line), line


@pytest.mark.parametrize("baselines", [True, False])
def test_per_layer_plot_names_its_axes_and_run_and_draws_the_baselines(baselines):
    rows = [{"layer": "block 1", "dim": 8, "kNN": 0.5, "linear": 0.625},
            {"layer": "block 2", "dim": 8, "kNN": 0.75, "linear": 0.875}]
    results = {"pretrained": {"kNN 100%": 0.75, "linear 100%": 0.875, "kNN 1%": 0.5}}
    if baselines:
        results["random init"] = {"kNN 100%": 0.25, "linear 100%": 0.375, "kNN 1%": 0.1}
        results["raw pixels"] = {"kNN 100%": 0.125, "linear 100%": 0.0625, "kNN 1%": 0.1}
    out = {"step": 7, "method": "dino", "dataset": "digits", "results": results,
           "per_layer": {"layers": rows, "best": layers.best_layers(rows), "vit_token": "cls"}}
    figure = layers.layer_figure(out["per_layer"], **job.per_layer_plot_labels(out))
    try:
        axes, = figure.axes
        assert axes.get_title() == "dino on digits, step 7: per layer, all labels"
        assert axes.get_xlabel() == "ViT block (CLS token, final LayerNorm)"
        assert axes.get_ylim() == (0, 100)
        plotted = {line.get_label(): list(line.get_ydata()) for line in axes.lines}
    finally:
        figure.clear()
    expected = {"kNN": [50, 75], "linear": [62.5, 87.5]}
    if baselines:  # horizontal lines at the all-labels probes of the baselines
        expected |= {"kNN, random init": [25, 25], "linear, random init": [37.5, 37.5],
                     "kNN, raw pixels": [12.5, 12.5], "linear, raw pixels": [6.25, 6.25]}
    assert plotted == expected


# ----------------------------------------------------------------------------------------
# Official protocols
# ----------------------------------------------------------------------------------------


# Learning rates above the official ones so that 2 epochs learn something: those are made
# for 90-100 epochs at batches of 1024 and more. MAE's LARS moves the weights by only
# lr·0.001 of their norm a step, too little to also learn through the crops of 16-px
# digits in 2 epochs; its test trains on the eval transform (its head, BN and optimizer
# are what it checks), the others through the protocol's augmentation.
@pytest.mark.parametrize("name, kwargs", [
    ("dino", {"base_learning_rate": 0.1, "batch_size": 32}),
    ("mae", {"base_learning_rate": 40.0, "batch_size": 32, "augment": False}),
    ("simclr", {"base_learning_rate": 1.0, "batch_size": 64}),
])
def test_protocols_train_a_head_that_beats_chance(name, kwargs, digits):
    vit = tiny_vit()
    out = protocols.run(name, vit, init(vit), digits, epochs=2, **kwargs)
    assert out["protocol"] == name and out["steps"] == 2 * (1498 // kwargs["batch_size"])
    assert out["top1"] > 0.25, out  # chance: 0.1
    assert out["feature_dim"] == (64 if name == "dino" else 32)  # DINO: 2 blocks' CLS


def test_mae_head_batch_norm_has_no_affine_parameters():
    head = protocols.mae_head(10)
    x = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 8)).astype(np.float32)
    variables = head.init(jax.random.PRNGKey(0), x, train=False)
    assert set(variables["params"]) == {"linear"}
    assert set(variables["batch_stats"]["bn"]) == {"mean", "var"}
    # in training it standardises with the batch statistics, eps 1e-6, nothing learned
    _, state = head.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(state["batch_stats"]["bn"]["mean"], 0.1 * x.mean(0), rtol=1e-5)
    w = variables["params"]["linear"]["kernel"]
    normalised = (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-6)
    logits, _ = head.apply(variables, x, train=True, mutable=["batch_stats"])
    np.testing.assert_allclose(logits, normalised @ w, rtol=1e-4, atol=1e-5)


def test_lars_step_matches_maes_update_rule():
    params = {"w": jnp.array([[1.0, 2.0], [3.0, 4.0]]), "b": jnp.array([0.5, -0.5])}
    grads = {"w": jnp.array([[0.1, 0.0], [0.0, 0.1]]), "b": jnp.array([1.0, 1.0])}
    tx = protocols.lars(0.1, weight_decay=0.01)
    state = tx.init(params)
    for _ in range(2):  # the second step exercises the momentum
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
    # facebookresearch/mae util/lars.py by hand, two steps
    w, b = np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([0.5, -0.5])
    mu_w, mu_b = np.zeros_like(w), np.zeros_like(b)
    for _ in range(2):
        dp = np.array(grads["w"]) + 0.01 * w
        dp = dp * 0.001 * np.linalg.norm(w) / np.linalg.norm(dp)
        mu_w, mu_b = 0.9 * mu_w + dp, 0.9 * mu_b + np.array(grads["b"])
        w, b = w - 0.1 * mu_w, b - 0.1 * mu_b
    np.testing.assert_allclose(params["w"], w, rtol=1e-6)
    np.testing.assert_allclose(params["b"], b, rtol=1e-6)


def test_dino_features_concatenate_the_last_blocks_cls_tokens():
    vit = tiny_vit(depth=3)
    variables = init(vit)
    images = np.random.default_rng(0).normal(size=(2, SIZE, SIZE, 3)).astype(np.float32)
    blocks = apply(vit, variables, images, return_layers=(0, 1, 2))["layers"]
    two = jax.jit(protocols.dino_embedder(vit, variables, n_last_blocks=2))(images)
    np.testing.assert_allclose(two, np.concatenate([blocks[1][:, 0], blocks[2][:, 0]], -1),
                               rtol=1e-5, atol=1e-6)
    pooled = jax.jit(protocols.dino_embedder(vit, variables, n_last_blocks=1,
                                             avgpool_patchtokens=True))(images)
    np.testing.assert_allclose(pooled[:, 32:], blocks[2][:, 1:].mean(1), rtol=1e-5, atol=1e-6)
    assert jax.eval_shape(protocols.dino_embedder(vit, variables), images).shape == (2, 96)
    assert protocols.dino_defaults(384) == (4, False)
    assert protocols.dino_defaults(768) == (1, True)
    with pytest.raises(ValueError, match="unknown linear-probe protocol 'byol'"):
        protocols.run("byol", vit, variables, None, batch_size=8)


# ----------------------------------------------------------------------------------------
# bfloat16 and watch mode on checkpoints of a tiny training run
# ----------------------------------------------------------------------------------------


STEPS = (4, 8)


@pytest.fixture(scope="module")
def saved_states():
    """{step: (params, method_state)} of a tiny SimCLR, initialised with a different seed
    at each step, so that restoring the wrong step gives other features."""
    config = tiny_config("simclr")
    batch = {"views": np.zeros((2, 2, SIZE, SIZE, 3), np.float32),
             "label": np.zeros(2, np.int32)}
    init_state = jax.jit(lambda key: methods.get("simclr").init(key, config, batch))
    return config, {step: init_state(jax.random.PRNGKey(step)) for step in STEPS}


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory, saved_states):
    """A workdir with complete SimCLR checkpoints of ``saved_states`` at steps 4 and 8,
    saved with the project's checkpoint helpers (no training step to compile)."""
    workdir = str(tmp_path_factory.mktemp("run"))
    config, states = saved_states
    manager = checkpoints.manager(workdir, save_every=1, keep=10)
    for step, (params, method_state) in states.items():
        checkpoints.save(manager, step, {"step": np.int32(step), "params": params,
                                         "method_state": method_state}, config, force=True)
    manager.wait_until_finished()
    manager.close()
    return pathlib.Path(workdir)


def test_bfloat16_backbone_gives_float32_features_close_to_float32(trained_workdir, digits):
    _, _, backbone, variables = job.restore_backbone(str(trained_workdir), dtype="bfloat16")
    assert backbone.dtype == jnp.bfloat16
    _, _, backbone32, _ = job.restore_backbone(str(trained_workdir))
    got = {}
    for name, net in (("bf16", backbone), ("f32", backbone32)):
        x, _ = features.extract(lambda im, n=net: n.apply(variables, im)["cls"],
                                digits.test_source, digits.eval_recipe, digits.mesh,
                                batch_size=304, progress=False)
        got[name] = x
    assert got["bf16"].dtype == np.float32 and got["bf16"].shape == (299, 32)
    assert not np.array_equal(got["bf16"], got["f32"])  # it did compute in bfloat16
    cosine = np.sum(got["bf16"] * got["f32"], 1) / (
        np.linalg.norm(got["bf16"], axis=1) * np.linalg.norm(got["f32"], axis=1))
    assert cosine.min() > 0.99
    with pytest.raises(ValueError, match="config.dtype must be one of"):
        job.restore_backbone(str(trained_workdir), dtype="float16")


def _copy_run(src, dst):
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("eval"))
    return dst


def _fake_evaluate(workdir, calls):
    """Restores the step for real (so a deleted checkpoint fails as in the job) and returns
    a small result; records the steps it was called with."""
    def evaluate(step):
        calls.append(step)
        _, restored, _, _ = job.restore_backbone(str(workdir), step)
        return {"step": restored, "results": {"pretrained": {"kNN 100%": step / 100}}}
    return evaluate


def _tensorboard_scalars(directory):
    import tensorflow as tf
    values = {}
    for path in pathlib.Path(directory).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                values[(value.tag, event.step)] = float(tf.make_ndarray(value.tensor))
    return values


def test_watch_evaluates_each_complete_checkpoint_once_and_resumes(trained_workdir, tmp_path):
    workdir = _copy_run(trained_workdir, tmp_path / "run")
    ckpt_dir = pathlib.Path(checkpoints.directory(str(workdir)))
    half_written = ckpt_dir / "12.orbax-checkpoint-tmp-1234567"
    shutil.copytree(ckpt_dir / "8", half_written)  # what Orbax holds while writing step 12
    calls = []
    evaluate = _fake_evaluate(workdir, calls)
    assert watch.complete_steps(str(workdir)) == [4, 8]  # not the half-written 12
    assert watch.watch(str(workdir), evaluate=evaluate, poll_seconds=0, max_idle_polls=1) == [4, 8]
    assert calls == [4, 8]
    assert watch.load_done(str(workdir)) == {4, 8}
    tb = _tensorboard_scalars(workdir / "eval" / "tensorboard")
    assert tb == {("pretrained/kNN_100pct", 4): pytest.approx(0.04),
                  ("pretrained/kNN_100pct", 8): pytest.approx(0.08)}
    lines = (workdir / "eval" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [4, 8]

    # a restarted watcher does not redo 4 and 8; step 12 is evaluated once it is committed
    assert watch.watch(str(workdir), evaluate=evaluate, poll_seconds=0, max_idle_polls=1) == []
    half_written.rename(ckpt_dir / "12")
    assert watch.watch(str(workdir), evaluate=evaluate, poll_seconds=0, max_idle_polls=2) == [12]
    assert calls == [4, 8, 12]


def test_watch_waits_for_the_first_checkpoint_without_counting_idle_polls(
        trained_workdir, tmp_path, capsys):
    workdir = tmp_path / "run"  # started before the trainer saved anything
    staged = shutil.copytree(trained_workdir / "checkpoints", tmp_path / "staged")
    # the trainer's first checkpoints appear after many polls (renamed: all at once)
    trainer = threading.Timer(0.5, staged.rename, [workdir / "checkpoints"])
    trainer.start()
    calls = []
    try:
        evaluated = watch.watch(str(workdir), evaluate=_fake_evaluate(workdir, calls),
                                poll_seconds=0.02, max_idle_polls=1)
    finally:
        trainer.join()
    assert evaluated == calls == [4, 8]
    out = capsys.readouterr().out
    assert out.count(f"waiting for the first checkpoint in {workdir / 'checkpoints'}") == 1
    assert "stopping after 1 idle poll (no new checkpoint in" in out
    assert "evaluated step 8: kNN 8.0%\n" in out


def test_scalar_tags_use_slash_only_between_levels():
    rows = [{"layer": "block 1", "dim": 8, "kNN": 0.5, "linear": 0.625}]
    out = {"results": {"pretrained": {"kNN 100%": 0.75, "linear 5/class": 0.25}},
           "per_layer": {"layers": rows, "best": layers.best_layers(rows)},
           "linear_protocol": {"protocol": "dino", "top1": 0.125}}
    assert watch.scalars(out) == {
        "pretrained/kNN_100pct": 0.75, "pretrained/linear_5_per_class": 0.25,
        "per_layer/block_1/kNN": 0.5, "per_layer/block_1/linear": 0.625,
        "per_layer/best_kNN": 0.5, "per_layer/best_linear": 0.625,
        "linear_protocol/dino": 0.125}
    assert watch.headline(out) == ("kNN 75.0%; best layer block 1 (linear 62.5%); "
                                   "dino protocol 12.5%")


def test_watch_skips_a_checkpoint_deleted_before_it_is_restored(trained_workdir, tmp_path,
                                                                capsys):
    workdir = _copy_run(trained_workdir, tmp_path / "run")
    ckpt_dir = pathlib.Path(checkpoints.directory(str(workdir)))
    calls = []
    restore = _fake_evaluate(workdir, calls)

    def evaluate(step):
        if step == 4:  # the trainer's max_to_keep removes it after the listing
            shutil.rmtree(ckpt_dir / "4")
        return restore(step)
    assert watch.watch(str(workdir), evaluate=evaluate, poll_seconds=0, max_idle_polls=1) == [8]
    assert "checkpoint 4 was deleted" in capsys.readouterr().out
    assert watch.load_done(str(workdir)) == {8}

    def broken(step):
        raise RuntimeError("a bug in the evaluation")
    shutil.copytree(ckpt_dir / "8", ckpt_dir / "16")
    with pytest.raises(RuntimeError, match="a bug"):  # a present checkpoint: not swallowed
        watch.watch(str(workdir), evaluate=broken, poll_seconds=0, max_idle_polls=1)


def test_evaluate_job_probes_every_representation_and_layer_from_one_pass(
        trained_workdir, saved_states, tmp_path, monkeypatch, capsys):
    workdir = _copy_run(trained_workdir, tmp_path / "run")
    extract = features.extract
    embedders = []

    def recording_extract(embed, *args, **kwargs):
        embedders.append(embed)
        return extract(embed, *args, **kwargs)
    monkeypatch.setattr(features, "extract", recording_extract)
    out = job.evaluate(str(workdir), step=4, batch_size=256, per_layer=True)
    # the step asked for, with that step's weights: the features it extracted are those
    # of step 4's saved parameters, not the latest (step 8) ones
    assert (out["step"], out["method"], out["dataset"]) == (4, "simclr", "digits")
    assert re.search(r"probe layer 1/1 block 1: kNN \d+\.\d%, linear \d+\.\d% \(\d+ s\)",
                     capsys.readouterr().out)
    assert (workdir / "eval" / "per_layer_step_4.png").read_bytes()[:8] == PNG_SIGNATURE
    config, states = saved_states
    backbone = common.build_backbone(config, axis_name=None)
    images = np.random.default_rng(0).normal(size=(3, SIZE, SIZE, 3)).astype(np.float32)
    expected = {step: apply(backbone, methods.get("simclr").backbone_variables(*state),
                            images)["cls"] for step, state in states.items()}
    evaluated = jax.jit(embedders[-1])(images)[0]["pretrained"]
    np.testing.assert_allclose(evaluated, expected[4], rtol=1e-5, atol=1e-5)
    assert not np.allclose(evaluated, expected[8], atol=1e-2)
    results = out["results"]
    assert list(results) == ["pretrained", "random init", "raw pixels"]
    assert all(0.0 <= top1 <= 1.0 for row in results.values() for top1 in row.values())
    assert results["random init"] != results["pretrained"]
    # the last block's CLS token is the backbone's output: its probes are the pretrained
    # backbone's with all labels
    last = out["per_layer"]["layers"][-1]
    assert last["kNN"] == results["pretrained"]["kNN 100%"]
    assert last["linear"] == pytest.approx(results["pretrained"]["linear 100%"], abs=2e-3)


@pytest.mark.slow  # about a minute on 2 busy cores; each part has a fast test above
def test_evaluate_job_with_per_layer_protocol_and_bfloat16(trained_workdir, tmp_path):
    workdir = _copy_run(trained_workdir, tmp_path / "run")
    out = job.evaluate(str(workdir), baselines=False, batch_size=256, per_layer=True,
                       protocol="simclr", protocol_kwargs={"epochs": 1,
                                                           "base_learning_rate": 1.0},
                       dtype="bfloat16")
    assert out["step"] == 8 and out["dtype"] == "bfloat16"
    assert [r["layer"] for r in out["per_layer"]["layers"]] == ["block 1"]
    assert out["linear_protocol"]["protocol"] == "simclr"
    assert 0.0 <= out["linear_protocol"]["top1"] <= 1.0
    saved = json.loads((workdir / "eval" / "step_8.json").read_text())
    assert saved["per_layer"]["best"]["linear"]["layer"] == "block 1"
    assert (workdir / "eval" / "per_layer_step_8.png").read_bytes()[:8] == PNG_SIGNATURE
    assert "block 1" in (workdir / "eval" / "per_layer_step_8.txt").read_text()
    assert "linear_protocol/simclr" in watch.scalars(out)


def test_outputs_go_to_bucket_workdirs():
    """Metrics, results, per-layer table and plot, and the watcher's done list are written
    through tf.io.gfile, so a bucket workdir (gs://... on TPU pods) works as a local one.
    TF's in-memory ram:// filesystem stands in for the bucket."""
    import tensorflow as tf

    from jax_ssl.metric_writer import MetricWriter
    workdir = "ram://bucket/run"
    writer = MetricWriter(workdir + "/eval")
    writer.write(3, {"kNN": 0.5})
    writer.write(4, {"kNN": 0.75})
    writer.close()
    with tf.io.gfile.GFile(workdir + "/eval/metrics.jsonl") as f:
        assert [json.loads(line) for line in f] == [{"step": 3, "kNN": 0.5},
                                                     {"step": 4, "kNN": 0.75}]
    rows = [{"layer": "block 1", "dim": 8, "kNN": 0.5, "linear": 0.6}]
    out = {"step": 7, "method": "simclr", "dataset": "digits",
           "results": {"pretrained": {"kNN 100%": 0.5, "linear 100%": 0.5}},
           "per_layer": {"layers": rows, "best": layers.best_layers(rows), "vit_token": "cls"}}
    job.write_outputs(workdir, out)
    with tf.io.gfile.GFile(workdir + "/eval/step_7.json") as f:
        assert json.load(f)["results"] == out["results"]
    with tf.io.gfile.GFile(workdir + "/eval/per_layer_step_7.png", "rb") as f:
        assert f.read(8) == PNG_SIGNATURE
    assert "block 1" in tf.io.gfile.GFile(workdir + "/eval/per_layer_step_7.txt").read()
    watch.save_done(workdir, {4, 2})
    watch.save_done(workdir, {4, 2, 9})  # the rename replaces the old list
    assert watch.load_done(workdir) == {2, 4, 9}
    assert watch.complete_steps(workdir) == []  # no checkpoints/ yet: nothing to do
    with pytest.raises(FileNotFoundError, match="no checkpoints in ram://bucket/run"):
        job.restore_backbone(workdir)


def test_a_damaged_checkpoint_is_skipped_unless_asked_for(trained_workdir, tmp_path, capsys):
    workdir = tmp_path / "run"
    shutil.copytree(trained_workdir, workdir)
    damage_latest(workdir, "truncated arrays")  # step 8
    _, step, _, variables = job.restore_backbone(str(workdir))
    assert step == 4 and "checkpoint 8 in" in capsys.readouterr().out
    assert (workdir / "checkpoints" / "8").is_dir()  # evaluation changes nothing
    with pytest.raises(checkpoints.DamagedCheckpoint, match=r"checkpoint 8 in .* cannot be "
                                                            r"read \(ValueError"):
        job.restore_backbone(str(workdir), step=8)


def test_results_are_printed_before_a_failed_write(tmp_path, capsys):
    from jax_ssl.evaluate import __main__ as cli_main
    (tmp_path / "eval").write_text("a file where the eval directory goes")
    out = {"step": 3, "dtype": "float32", "method": "simclr", "dataset": "digits",
           "results": {"pretrained": {"kNN 100%": 0.5, "linear 100%": 0.25}}}
    with pytest.raises(OSError, match=r"results of step 3 could not be written to .*eval"):
        cli_main._print_and_write(str(tmp_path), out)
    assert "50.0%" in capsys.readouterr().out


def test_watch_skips_a_damaged_checkpoint_and_goes_on(trained_workdir, tmp_path, capsys):
    workdir = _copy_run(trained_workdir, tmp_path / "run")
    damage_latest(workdir, "missing state")  # step 8
    calls, fake = [], _fake_evaluate(workdir, [])

    def evaluate(step):  # a watcher retrying the damaged step at each poll fails, not hangs
        calls.append(step)
        assert len(calls) < 5, f"retried: {calls}"
        return fake(step)
    assert watch.watch(str(workdir), evaluate=evaluate, poll_seconds=0, max_idle_polls=2) == [4]
    assert calls == [4, 8]  # 8 tried once, not at every poll
    assert "checkpoint 8 in" in capsys.readouterr().out
    assert watch.load_done(str(workdir)) == {4}


def test_a_label_fraction_without_a_protocol_is_refused_before_any_work(trained_workdir):
    with pytest.raises(ValueError, match="label_fraction=0.1: a fraction"):
        job.evaluate(str(trained_workdir), label_fraction=0.1)  # fast: nothing to train
    with pytest.raises(ValueError, match="label_fraction=0: a fraction"):
        job.evaluate(str(trained_workdir), protocol="finetune", label_fraction=0)


@pytest.mark.slow  # ~45 s on 2 busy cores; finetune.py's parts have fast tests
def test_evaluate_job_fine_tunes_on_a_fraction_of_the_labels(trained_workdir, tmp_path):
    workdir = _copy_run(trained_workdir, tmp_path / "run")
    out = job.evaluate(str(workdir), baselines=False, batch_size=64, protocol="finetune",
                       protocol_kwargs={"epochs": 1, "warmup_epochs": 0},
                       label_fraction=0.1)
    tuned = out["finetune"]
    digits_train = sources.digits("train")
    expected = len(labels.label_subset(digits_train.labels, fraction=0.1))
    assert tuned["train_examples"] == expected and tuned["label_fraction"] == 0.1
    assert tuned["steps"] == expected // 64 and 0.0 <= tuned["top1"] <= 1.0
    assert watch.tag("finetune", "10%") in watch.scalars(out)
