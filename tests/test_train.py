"""The trainer with every method: training runs, multi-device gradients, resume, bad input."""
import contextlib
import functools
import io
import json
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl import checkpoints, methods, optim, parallel, train
from jax_ssl import config as config_lib
from jax_ssl.config import from_file
from jax_ssl.data import pipeline
from jax_ssl.evaluate import job
from jax_ssl.methods import common

CONFIGS = pathlib.Path(__file__).parent.parent / "configs"
IMPLEMENTED = [m for m in methods.NAMES if (CONFIGS / f"{m}_digits.py").exists()]
TINY_VIT = dict(patch_size=8, image_size=16, embed_dim=32, depth=1, num_heads=2)
# The crop-based recipes at 16 px: 5-px cells with 4-px tiles, 4-px patches; their ViT
# takes 4-px patches (a tile is one token).
# PIRL's ten colour jitters per image are off: they make its tf.data graph the slowest
# to build (tests/test_data_recipes_pretext.py covers them).
TINY_CROPS = {"jigsaw": dict(size=15, tile=4),
              "pirl": dict(size=16, jigsaw_size=15, tile=4, jitter=(0.0, 0.0, 0.0, 0.0)),
              "relative_position": dict(patch=4, gap=1, jitter=0)}


def load_config(name: str):
    return from_file(CONFIGS / f"{name}.py")


def tiny_config(method: str, **overrides):
    """The method's digits config shrunk to seconds: 16-px crops, a 1-block ViT."""
    config = load_config(f"{method}_digits")
    # the learning rate the config reaches at its own batch size, without warm-up
    config.optimizer.base_learning_rate *= config.batch_size / 16
    config.optimizer.warmup_epochs = 0
    config.batch_size = 16
    config.total_steps = 8
    config.log_every = 1
    config.data.image_size = 16
    for key in ("size", "global_size"):
        if key in config.data.recipe_kwargs:
            config.data.recipe_kwargs[key] = 16
    if "local_size" in config.data.recipe_kwargs:
        config.data.recipe_kwargs.update(local_size=8, num_local=2)
    config.data.recipe_kwargs.update(TINY_CROPS.get(config.data.recipe, {}))
    if method == "mae":
        config.model.backbone_kwargs.update(patch_size=8, image_size=16, embed_dim=32,
                                            depth=1, num_heads=2, decoder_embed_dim=16,
                                            decoder_depth=1, decoder_num_heads=2)
    else:
        config.model.backbone = "vit_ti16"
        config.model.backbone_kwargs = dict(TINY_VIT)
        if config.data.recipe in TINY_CROPS:
            config.model.backbone_kwargs.update(patch_size=4)
        if method == "ijepa":  # an 8×8 grid, where a target block holds > min_keep patches
            config.model.backbone_kwargs.update(patch_size=2, class_token=False,
                                                pos_embed="sincos")
    config.checkpoint.every_steps = 4
    config.update_from_flattened_dict(overrides)
    return config


def logged(workdir, key="loss"):
    lines = (pathlib.Path(workdir) / "metrics.jsonl").read_text().splitlines()
    return [json.loads(line)[key] for line in lines]


def _fixed_batch(config, size=64, seed=123):
    from jax_ssl.data import recipes, sources
    source = sources.get_source(config.data.source, image_size=config.data.image_size)
    recipe = recipes.make_recipe(config.data.recipe, **config.data.recipe_kwargs)
    indexed = getattr(methods.get(config.method), "USES_EXAMPLE_INDEX", False)
    return next(pipeline.train_batches(source, recipe, global_batch_size=size, seed=seed,
                                       with_index=indexed).as_numpy_iterator())


def init(config, batch):
    """The method's parameters and state for ``config`` (the digits split's size)."""
    return common.init_method(methods.get(config.method), jax.random.PRNGKey(config.seed),
                              config, batch, num_examples=1498)


# Some methods' runs here (20-45 s each) are in the slow set, to keep the default run
# under 15 minutes on 2 cores. They train on 8 devices in other default tests: SimCLR in
# its resumption, SwAV with its queue, PIRL in the 8-device step and its resumption; the
# other pretext methods share PIRL's crop tower and the trainer; DINO's multi-crop, EMA
# teacher, loss and teacher-backbone restore run in iBOT's run (iBOT is DINO plus the
# patch loss), its cross-device loss and center in iBOT's 8-device step; MoCo v3's
# symmetric EMA-teacher loss is BYOL's (whose run is kept), and its run cannot check
# that it learned (below).
TRAINED_ON_EIGHT_DEVICES_ELSEWHERE = {"simclr", "swav", "dino", "moco_v3",
                                      *config_lib.PRETEXT_METHODS}
# Barlow Twins', VICReg's and BYOL's runs (15-20 s each) too: their losses equal the
# global batch's on 8 devices (test_multidevice.py), SimCLR's 8-device step is the same
# two-view step, and DINOv2's resumed run trains an EMA teacher.
TRAINED_ON_EIGHT_DEVICES_ELSEWHERE |= {"barlow_twins", "vicreg", "byol"}
# iBOT's run (45-65 s) is in the slow set too: its 8-device step equals the 1-device one
# (masks, patch center, both losses), and the layout the evaluation job restores is
# checked below without training. So are DINOv2's, I-JEPA's and QB-Heat's (30-40 s
# each): their 8-device steps are in the default run, DINOv2 resumes bit for bit there,
# and the layouts DINOv2 and I-JEPA hand the evaluation job are checked below.
SLOW_RUNS = TRAINED_ON_EIGHT_DEVICES_ELSEWHERE | {"ibot", "dinov2", "ijepa", "qbheat"}


@pytest.mark.parametrize("method", [
    pytest.param(m, marks=[pytest.mark.slow] if m in SLOW_RUNS else []) for m in IMPLEMENTED])
def test_method_trains_on_eight_devices_and_its_backbone_restores(method, tmp_path):
    config = tiny_config(method, total_steps=20, **{"checkpoint.every_steps": 10})
    result = train.train(config, str(tmp_path))
    losses = logged(tmp_path)
    assert len(losses) == 20 and np.isfinite(losses).all()
    assert checkpoints.manager(str(tmp_path), read_only=True).latest_step() == 20
    assert int(result["state"]["step"]) == 20
    for monitor in ("embedding_std", "rankme", "grad_norm", "learning_rate"):
        assert np.isfinite(logged(tmp_path, monitor)).all()
    # it learned: on a batch it never saw, against the final targets (teacher, center,
    # statistics), the trained parameters score better than the initial ones. (Not MoCo
    # v3: at this size its loss stays near chance, 2·2τ·ln B, for ~100 steps, so after
    # 20 steps the comparison is a coin toss of the augmentation draws. Not PIRL: in its
    # first epoch the memory bank fills with the network's still-similar embeddings, so
    # against the final bank its loss rises before it falls, as VISSL's does; the digits
    # config falls from its peak at epoch 1 onwards.)
    module = methods.get(method)
    batch = _fixed_batch(config)
    initial, _ = init(config, jax.tree.map(lambda x: x[:2], batch))
    final = jax.device_get(result["state"])
    loss_of = jax.jit(lambda params: module.loss_fn(
        params, final["method_state"], batch, jax.random.PRNGKey(1), 0, config=config,
        axis_name=None)[0])
    before, after = (float(loss_of(params)) for params in (initial, final["params"]))
    assert after < before or method in ("moco_v3", "pirl"), (before, after)
    # the evaluation job restores exactly the backbone the method evaluates (DINO: teacher)
    restored_config, step, backbone, variables = job.restore_backbone(str(tmp_path))
    assert step == 20 and restored_config.method == method
    expected = module.backbone_variables(final["params"], final["method_state"])
    jax.tree.map(np.testing.assert_array_equal, expected, jax.device_get(variables))
    images = np.zeros((2, 16, 16, 3), np.float32)
    assert common.pooled(backbone.apply(variables, images, train=False)).shape[0] == 2


@pytest.mark.parametrize("method", ["dino", "ibot", "dinov2", "ijepa"])
def test_evaluated_backbone_has_the_layout_the_eval_job_rebuilds(method):
    """What the evaluation job restores (the teacher's backbone; iBOT's with the mask
    token its student masks with) has the layout of the backbone it builds from the
    config: shapes only, nothing trained."""
    config = tiny_config(method)
    module = methods.get(method)
    params, state = jax.eval_shape(functools.partial(
        module.init, config=config, batch=jax.tree.map(lambda x: x[:2],
                                                       _fixed_batch(config, size=2))),
        jax.random.PRNGKey(0))
    restored = module.backbone_variables(params, state)
    expected = jax.eval_shape(lambda: job.random_backbone_variables(
        common.build_backbone(config, None), config, 0))
    assert jax.tree.map(lambda x: x.shape, restored) == jax.tree.map(lambda x: x.shape,
                                                                     expected)
    assert ("mask_token" in restored["params"]) == (method in common.MASK_TOKEN_METHODS)


@pytest.mark.parametrize("method", ["dino", "byol", "moco_v3"])
def test_student_drop_path_teacher_without(method):
    """Stochastic depth in the student (DINO's recipe uses 0.1); the EMA teacher, as the
    official ones, has none: its outputs do not depend on the rng."""
    config = tiny_config(method)
    config.model.backbone_kwargs.update(depth=2, drop_path_rate=0.5)
    module = methods.get(method)
    batch = _fixed_batch(config, size=8)
    params, state = init(config, batch)
    loss_of = jax.jit(lambda rng: module.loss_fn(params, state, batch, rng, 0, config=config,
                                                 axis_name=None)[0])
    losses = [float(loss_of(jax.random.PRNGKey(seed))) for seed in (1, 2)]
    assert np.isfinite(losses).all() and losses[0] != losses[1]  # the student drops paths
    teacher = module.network(config, None, teacher=True)
    assert teacher.backbone.drop_path_rate == 0.0
    assert module.network(config, None).backbone.drop_path_rate == 0.5


def _one_step(config, devices, batch):
    """(state, metrics) after one trainer step on ``batch`` (with ``SGD_LR_1``: one SGD
    step of learning rate 1) from the parameters of seed 0, on a mesh of ``devices``."""
    mesh = parallel.data_mesh(devices)
    method = methods.get(config.method)
    params, method_state = init(config, batch)
    tx, lr = optim.optimizer(config, total_steps=10, steps_per_epoch=10)
    state = {"step": np.zeros((), np.int32), "params": params,
             "opt_state": tx.init(params), "method_state": method_state}
    step = train.make_train_step(method, tx, config, mesh, lr, total_steps=10,
                                 steps_per_epoch=10, specs=train.state_specs(state, method))
    global_batch = next(pipeline.global_batches(iter([batch]), mesh))
    new_state, metrics = step(train.place_state(state, method, mesh), global_batch)
    return jax.device_get(new_state), jax.device_get(metrics)


# Plain SGD at learning rate 1 for a batch of 16: an update is minus the gradient.
SGD_LR_1 = {"optimizer.name": "sgd", "optimizer.momentum": 0.0, "optimizer.weight_decay": 0.0,
            "optimizer.base_learning_rate": 256 / 16, "optimizer.warmup_epochs": 0}


# Variants of a method's config for the 8-device step: DINOv2 with its Sinkhorn-Knopp
# centering (over the padded buffer of masked tokens) and the separate iBOT head;
# QB-Heat on a ResNet (its quarter crops' synchronised BN).
STEP_VARIANTS = {"dinov2:sinkhorn": ("dinov2", {"dinov2.centering": "sinkhorn_knopp",
                                                "dinov2.separate_head": True}),
                 "qbheat:resnet": ("qbheat", {"model.backbone": "resnet18",
                                              "model.backbone_kwargs": dict(cifar_stem=True,
                                                                            width=4)})}


# QB-Heat's ResNet step is slow: the ResNet's synchronised BN over 8 devices is
# test_models_resnet's, and QB-Heat's ResNet path is tested in test_models_qbheat.
# SwAV's too: its loss, Sinkhorn codes and queue on 8 devices are tested on their own
# (test_multidevice.py, test_swav_queue_fills_per_device_and_is_used); and iBOT's: its
# losses and patch center are test_multidevice.py's cases, and DINOv2's step runs the
# masked student, block masks and multi-crop teacher on 8 devices.
@pytest.mark.parametrize("method", ["simclr", "dinov2:sinkhorn", "ijepa", "qbheat", "pirl",
                                    *(pytest.param(m, marks=pytest.mark.slow) for m in (
                                        "swav", "ibot", "dino", "dinov2", "qbheat:resnet",
                                        "jigsaw"))])
def test_eight_device_step_equals_one_device_step(method):
    """PIRL: its memory bank split over the 8 devices, updated as on one."""
    method, overrides = STEP_VARIANTS.get(method, (method, {}))
    config = tiny_config(method, **SGD_LR_1, **overrides)
    batch = _fixed_batch(config, size=16, seed=0)
    one, metrics_one = _one_step(config, jax.devices()[:1], batch)
    eight, metrics_eight = _one_step(config, jax.devices(), batch)
    np.testing.assert_allclose(metrics_eight["loss"], metrics_one["loss"], rtol=1e-5)
    moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), one["params"], eight["params"])
    assert max(jax.tree.leaves(moved)) < 1e-4, moved
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 one["method_state"], eight["method_state"])


def test_gradient_accumulation_averages_the_micro_batch_gradients():
    """k = 2 micro-batches: one step whose update is the mean of the micro-batches'
    updates (SimCLR's loss couples a batch, so the reference is not the full batch's
    gradient), the mean of their losses, and one step counted."""
    batch = _fixed_batch(tiny_config("simclr"), size=32, seed=0)
    state, metrics = _one_step(tiny_config("simclr", grad_accum_steps=2, **SGD_LR_1),
                               jax.devices(), batch)
    # device d holds rows 4d…4d+3 and splits them in order: micro-batch i is rows
    # 4d+2i, 4d+2i+1 of every device (the reference steps are the 8-device test's program)
    micro = [jax.tree.map(lambda x, i=i: x.reshape(8, 2, 2, *x.shape[1:])[:, i].reshape(
        16, *x.shape[1:]), batch) for i in range(2)]
    reference = [_one_step(tiny_config("simclr", **SGD_LR_1), jax.devices(), part)
                 for part in micro]
    expected = jax.tree.map(lambda *params: np.mean(params, axis=0),
                            *(ref_state["params"] for ref_state, _ in reference))
    jax.tree.map(lambda want, got: np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6),
                 expected, state["params"])
    assert int(state["step"]) == 1
    np.testing.assert_allclose(metrics["loss"], np.mean([m["loss"] for _, m in reference]),
                               rtol=1e-5)
    np.testing.assert_allclose(metrics["learning_rate"], 1.0)


def test_bfloat16_computes_in_bfloat16_with_float32_parameters(rng):
    config = tiny_config("simclr", dtype="bfloat16")
    method = methods.get("simclr")
    batch = {"views": rng.normal(size=(8, 2, 16, 16, 3)).astype(np.float32)}
    params, method_state = jax.jit(lambda: method.init(jax.random.PRNGKey(0), config, batch))()
    # the activations are bfloat16: a block's MLP and the projector's output
    _, captured = jax.eval_shape(lambda: method.network(config, None).apply(
        {"params": params, **method_state}, batch["views"][:, 0], train=True,
        capture_intermediates=True, mutable=["intermediates", "batch_stats"]))
    layers = captured["intermediates"]
    assert layers["backbone"]["blocks_0"]["mlp"]["fc1"]["__call__"][0].dtype == jnp.bfloat16
    assert layers["head"]["__call__"][0].dtype == jnp.bfloat16
    # a trainer step keeps the parameters and the method's state float32
    mesh = parallel.data_mesh(jax.devices()[:1])
    tx, lr = optim.optimizer(config, total_steps=10, steps_per_epoch=10)
    step = train.make_train_step(method, tx, config, mesh, lr, total_steps=10,
                                 steps_per_epoch=10)
    state = {"step": np.zeros((), np.int32), "params": params, "opt_state": tx.init(params),
             "method_state": method_state}
    new_state, metrics = jax.eval_shape(step, state, batch)
    dtypes = {x.dtype for x in jax.tree.leaves((new_state["params"],
                                                  new_state["method_state"]))}
    assert dtypes == {np.dtype(np.float32)} and metrics["loss"].dtype == np.float32
    # and the loss is the float32 network's to bfloat16's precision
    loss16, loss32 = (float(jax.jit(lambda c=c: method.loss_fn(
        params, method_state, batch, None, 0, config=c, axis_name=None)[0])())
        for c in (config, tiny_config("simclr")))
    assert np.isfinite(loss16) and loss16 != loss32
    np.testing.assert_allclose(loss16, loss32, rtol=2e-2)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished 9-step SimCLR run, trained into a relative workdir, checkpointing every
    2 steps (keep 1, keep_every 4), logging every 4, whose first step (compilation and the
    input's warm-up) took 1000 s more by the trainer's clock; with what it printed and the
    steps it saved."""
    config = tiny_config("simclr", total_steps=9, log_every=4,
                         **{"checkpoint.every_steps": 2, "checkpoint.keep": 1,
                            "checkpoint.keep_every": 4})
    offset, saved = [0.0], []
    real_batches, real_save = pipeline.global_batches, checkpoints.save

    def slow_first_batch(local, mesh, **kwargs):
        offset[0] += 1000.0
        yield from real_batches(local, mesh, **kwargs)

    def recorded_save(manager, step, *args, **kwargs):
        if real_save(manager, step, *args, **kwargs):
            saved.append(step)
            return True
        return False

    root = tmp_path_factory.mktemp("finished")
    output = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(output):
        patch.chdir(root)
        patch.setattr(pipeline, "global_batches", slow_first_batch)
        patch.setattr(checkpoints, "save", recorded_save)
        patch.setattr(train, "perf_counter", lambda: time.perf_counter() + offset[0])
        result = train.train(config, "runs/finished")
    return types.SimpleNamespace(config=config, workdir=root / "runs" / "finished",
                                 output=output.getvalue(), saved=saved, state=result["state"])


def test_progress_says_compiling_logs_the_first_step_and_times_after_it(finished_run):
    lines = finished_run.output.splitlines()
    steps = [line for line in lines if line.startswith("step ")]
    assert [line.split()[1] for line in steps] == ["1/9", "4/9", "8/9", "9/9"]
    compiling = next(i for i, line in enumerate(lines) if line.startswith("compiling"))
    assert re.fullmatch(r"compiled in \d+\.\d s", lines[compiling + 1])
    assert lines.index(steps[0]) > compiling + 1
    assert max(len(line) for line in lines) <= 120, lines
    assert "img/s" not in steps[0] and all("img/s" in line for line in steps[1:])
    records = [json.loads(line) for line in
               (finished_run.workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 4, 8, 9]
    assert "images_per_second" not in records[0]
    # none of the windows holds the 1000-s first step: 3 tiny steps took under 48 s
    assert min(r["images_per_second"] for r in records[1:]) > 1.0


def test_checkpoints_at_the_multiples_and_the_final_step_kept_by_keep_and_keep_every(
        finished_run):
    assert finished_run.saved == [2, 4, 6, 8, 9]  # no first-step save; 9 = total_steps
    # kept: the multiples of keep_every = 4 and the last keep = 1 (the workdir was relative)
    assert finished_run.workdir.is_dir()
    manager = checkpoints.manager(str(finished_run.workdir), read_only=True)
    assert list(manager.all_steps()) == [4, 8, 9]


def _snapshot(directory: pathlib.Path) -> dict:
    """Every file under ``directory`` with its modification time and bytes."""
    return {path: (path.stat().st_mtime_ns, path.read_bytes())
            for path in sorted(directory.rglob("*")) if path.is_file()}


def test_finished_run_says_so_and_writes_nothing(finished_run, capsys):
    before = _snapshot(finished_run.workdir)
    start = time.perf_counter()
    result = train.train(finished_run.config, str(finished_run.workdir))
    assert time.perf_counter() - start < 5  # nothing built, nothing compiled
    assert result["state"] is None
    out = capsys.readouterr().out
    assert "already complete (checkpoint at step 9" in out and "jax-ssl-eval --workdir" in out
    assert "resumed" not in out and "compiling" not in out
    assert _snapshot(finished_run.workdir) == before


def test_another_run_in_the_workdir_is_refused_before_anything_is_written(finished_run,
                                                                            tmp_path):
    before = _snapshot(finished_run.workdir)
    with pytest.raises(train.IncompatibleWorkdir,
                       match=r"holds a run with another config \(method 'simclr' -> 'byol', "
                             r".*another --workdir"):
        train.train(tiny_config("byol"), str(finished_run.workdir))
    # another model for the same method, another optimizer setting too
    bigger = tiny_config("simclr", **{"model.backbone_kwargs.depth": 2, "optimizer.b2": 0.9})
    with pytest.raises(train.IncompatibleWorkdir,
                       match=r"model.backbone_kwargs.depth 1 -> 2, optimizer.b2 0.999 -> 0.9\)"):
        train.train(bigger, str(finished_run.workdir))
    assert _snapshot(finished_run.workdir) == before
    # a run stopped before its first checkpoint has only its config.json
    (tmp_path / "config.json").write_text(finished_run.config.to_json())
    with pytest.raises(train.IncompatibleWorkdir, match="method 'simclr' -> 'byol'"):
        train.train(tiny_config("byol"), str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


def test_resume_may_change_the_length_logging_checkpoints_processes_and_learning_rate():
    saved = tiny_config("simclr")
    changed = tiny_config("simclr", epochs=3.0, total_steps=100, log_every=7,
                          grad_accum_steps=2, dtype="bfloat16",
                          **{"checkpoint.every_steps": 9, "checkpoint.keep": 5,
                             "checkpoint.keep_every": 50, "distributed.enabled": True,
                             "data.data_dir": "/elsewhere", "data.eval_split": "train",
                             "optimizer.base_learning_rate": 1e-5,
                             "optimizer.warmup_epochs": 1})
    assert train.config_differences(saved, changed) == {}
    changed.seed, changed.batch_size = 1, 32
    changed.data.recipe_kwargs.size = 12
    assert train.config_differences(saved, changed) == {
        "seed": (0, 1), "batch_size": (16, 32), "data.recipe_kwargs.size": (16, 12)}


def test_half_written_checkpoint_leaves_the_previous_one(finished_run, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run.workdir, workdir)
    # what Orbax leaves when killed mid-write: a step directory under a temporary name
    partial = pathlib.Path(checkpoints.directory(str(workdir))) / "10.orbax-checkpoint-tmp-1234"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "garbage").write_bytes(b"\0" * 10)
    manager = checkpoints.manager(str(workdir), read_only=True)
    assert manager.latest_step() == 9
    restored = checkpoints.restore_state(manager, 9, finished_run.state)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(finished_run.state),
                 jax.device_get(restored))
    assert checkpoints.restore_config(manager, 9).method == "simclr"


def damage_latest(workdir: pathlib.Path, how: str) -> int:
    """Damages the newest checkpoint as a crash, a full disk or a stray ``rm`` would."""
    steps = sorted(int(p.name) for p in (workdir / "checkpoints").iterdir() if p.name.isdigit())
    step_dir = workdir / "checkpoints" / str(steps[-1])
    if how == "truncated arrays":
        for f in (step_dir / "state").rglob("d/*"):  # the array data files
            f.write_bytes(f.read_bytes()[:7])
    elif how == "missing state":
        shutil.rmtree(step_dir / "state")
    else:  # bad JSON in the saved config
        (step_dir / "config" / "metadata").write_text("{not json")
    return steps[-1]


@pytest.mark.parametrize("how", ["truncated arrays", "missing state", "bad config json"])
def test_resume_skips_a_damaged_checkpoint_and_keeps_it(finished_run, tmp_path, capsys, how):
    workdir = tmp_path / "run"
    shutil.copytree(finished_run.workdir, workdir)
    damaged = damage_latest(workdir, how)  # 9, the final one; 8 is intact
    longer = finished_run.config.copy_and_resolve_references()
    longer.total_steps = 10
    state = train.train(longer, str(workdir))["state"]
    out = capsys.readouterr().out
    assert f"checkpoint {damaged} in" in out and "cannot be read" in out
    assert "resumed at step 8" in out and int(state["step"]) == 10
    assert (workdir / "damaged" / str(damaged)).is_dir()  # moved aside, not deleted


# PIRL's (a memory bank, sharded) runs by default; the machinery is the same for every
# method's state, so SimCLR's and DINOv2's (centers, per-step teacher temperature and
# masks) are in the slow set.
@pytest.mark.parametrize("method", [pytest.param(m, marks=pytest.mark.slow)
                                    for m in ("simclr", "dinov2")] + ["pirl"])
def test_resume_is_bit_for_bit(tmp_path, monkeypatch, method):
    """DINOv2: its teacher, centers and per-step teacher temperature come back, and the
    masks of the steps after the crash are those of the straight run (drawn from the
    seed and the step). PIRL: its sharded memory bank and normaliser. (SimCLR's, the
    plain case, is in the slow set: both of these cover it.)"""
    config = tiny_config(method, total_steps=6, **{"checkpoint.every_steps": 1})
    straight = train.train(config, str(tmp_path / "straight"))["state"]

    real = pipeline.global_batches

    def crash_after_three(local, mesh, **kwargs):
        batches = real(local, mesh, **kwargs)
        for _ in range(3):
            yield next(batches)
        raise KeyboardInterrupt("simulated crash")

    monkeypatch.setattr(pipeline, "global_batches", crash_after_three)
    with pytest.raises(KeyboardInterrupt):
        train.train(config, str(tmp_path / "resumed"))
    monkeypatch.setattr(pipeline, "global_batches", real)
    resumed = train.train(config, str(tmp_path / "resumed"))["state"]
    assert int(resumed["step"]) == 6
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(straight),
                 jax.device_get(resumed))


def test_a_run_killed_while_saving_resumes(tmp_path):
    """SIGKILL (an OOM kill, a pre-empted VM) while Orbax writes step 4 in the background:
    step 4 is left half-written under a temporary name, and the same command resumes
    from step 2 and finishes."""
    workdir = tmp_path / "run"
    code = f"""
import os, signal, sys
sys.path.insert(0, {str(pathlib.Path(__file__).parent)!r})
from test_train import tiny_config
from jax_ssl import checkpoints, train
real_save = checkpoints.save
def save_then_die(manager, step, *args, **kwargs):
    started = real_save(manager, step, *args, **kwargs)
    if started and step == 4:  # the background write has begun
        os.kill(os.getpid(), signal.SIGKILL)
    return started
checkpoints.save = save_then_die
config = tiny_config("simclr", total_steps=6, **{{"checkpoint.every_steps": 2}})
train.train(config, {str(workdir)!r})
"""
    killed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    ckpt_dir = pathlib.Path(checkpoints.directory(str(workdir)))
    assert sorted(p.name for p in ckpt_dir.iterdir() if p.name.isdigit()) == ["2"]
    assert list(ckpt_dir.glob("4.orbax-checkpoint-tmp*"))  # the kill landed mid-write
    config = tiny_config("simclr", total_steps=6, **{"checkpoint.every_steps": 2})
    output = io.StringIO()
    with contextlib.redirect_stdout(output):
        state = train.train(config, str(workdir))["state"]
    assert "resumed at step 2" in output.getvalue() and int(state["step"]) == 6
    assert checkpoints.manager(str(workdir), read_only=True).all_steps() == [2, 4, 6]


def test_non_finite_loss_keeps_a_checkpoint_that_resumes(tmp_path):
    """Checkpoint s holds the state step s's loss is computed from: when that loss is not
    finite, checkpoint s is diverged and the one named as good must be older. With a
    warm-up the first update has learning rate 0, so checkpoint 1 is the initial state."""
    config = tiny_config("simclr", total_steps=8, **{
        "optimizer.base_learning_rate": 1e30, "optimizer.warmup_epochs": 1,
        "checkpoint.every_steps": 1})
    with pytest.raises(train.NonFiniteLoss, match=r"at step (\d+); stopping") as error:
        train.train(config, str(tmp_path))
    nan_step = int(re.search(r"at step (\d+)", str(error.value)).group(1))
    kept = int(re.search(r"last good checkpoint \(step (\d+)\)", str(error.value)).group(1))
    assert kept < nan_step and (tmp_path / "diverged" / str(nan_step)).is_dir()
    assert checkpoints.manager(str(tmp_path), read_only=True).latest_step() == kept
    config.optimizer.base_learning_rate = 1e-3  # what the message advises
    assert int(train.train(config, str(tmp_path))["state"]["step"]) == 8


def test_workdir_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "run").write_text("notes")
    with pytest.raises(train.IncompatibleWorkdir, match="is a file; give a directory"):
        train.train(tiny_config("simclr"), str(tmp_path / "run"))
    assert (tmp_path / "run").read_text() == "notes"


def test_batch_not_divisible_by_devices_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="12 is not divisible by the 8 devices"):
        train.train(tiny_config("simclr", batch_size=12), str(tmp_path))


def test_sigterm_saves_and_exits_then_resumes(tmp_path, monkeypatch):
    import os
    config = tiny_config("simclr", total_steps=8, **{"checkpoint.every_steps": 100})
    real = pipeline.global_batches

    def preempt_at_third(local, mesh, **kwargs):
        for i, batch in enumerate(real(local, mesh, **kwargs)):
            if i == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # what a TPU preemption sends
            yield batch

    monkeypatch.setattr(pipeline, "global_batches", preempt_at_third)
    state = train.train(config, str(tmp_path))["state"]
    assert int(state["step"]) == 3
    # the SIGTERM save only (no first-step one)
    assert list(checkpoints.manager(str(tmp_path), read_only=True).all_steps()) == [3]
    monkeypatch.setattr(pipeline, "global_batches", real)
    assert int(train.train(config, str(tmp_path))["state"]["step"]) == 8
    assert list(checkpoints.manager(str(tmp_path), read_only=True).all_steps()) == [3, 8]


def test_cli_names_a_misspelt_override(tmp_path):
    import subprocess
    import sys
    out = subprocess.run(
        [sys.executable, "-m", "jax_ssl.train", f"--config={CONFIGS / 'simclr_digits.py'}",
         f"--workdir={tmp_path}", "--config.optimizer.lerning_rate=0.1"],
        capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert "lerning_rate" in out.stderr and "base_learning_rate" in out.stderr, out.stderr[-2000:]


def test_swav_queue_fills_per_device_and_is_used(tmp_path):
    config = tiny_config("swav", total_steps=4, **{"swav.queue_length": 32,
                                                   "swav.freeze_prototypes_steps": 0})
    state = train.train(config, str(tmp_path))["state"]
    queue = np.asarray(state["method_state"]["queue"])  # [2 crops, 8 devices × 4, D]
    assert queue.shape == (2, 32, config.swav.output_dim)
    # each device pushed its 2 local embeddings per step: after 4 steps every slot is full
    np.testing.assert_allclose(np.linalg.norm(queue, axis=-1), 1.0, rtol=1e-5)
    assert np.isfinite(logged(tmp_path)).all()
