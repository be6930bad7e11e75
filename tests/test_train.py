"""The trainer with every method: training runs, multi-device gradients, resume, bad input."""
import json
import pathlib

import jax
import numpy as np
import pytest

from jax_ssl import checkpoints, methods, optim, parallel, train
from jax_ssl.config import from_file
from jax_ssl.data import pipeline
from jax_ssl.evaluate import job
from jax_ssl.methods import common

CONFIGS = pathlib.Path(__file__).parent.parent / "configs"
IMPLEMENTED = [m for m in methods.NAMES if (CONFIGS / f"{m}_digits.py").exists()]
TINY_VIT = dict(patch_size=8, image_size=16, embed_dim=32, depth=1, num_heads=2)


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
        config.data.recipe_kwargs.local_size = 8
    if method == "mae":
        config.model.backbone_kwargs.update(patch_size=8, image_size=16, embed_dim=32,
                                            depth=1, num_heads=2, decoder_embed_dim=16,
                                            decoder_depth=1, decoder_num_heads=2)
    else:
        config.model.backbone = "vit_ti16"
        config.model.backbone_kwargs = dict(TINY_VIT)
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
    return next(pipeline.train_batches(source, recipe, global_batch_size=size, seed=seed)
                .as_numpy_iterator())


@pytest.mark.parametrize("method", IMPLEMENTED)
def test_method_trains_on_eight_devices_and_its_backbone_restores(method, tmp_path):
    config = tiny_config(method, total_steps=20)
    result = train.train(config, str(tmp_path))
    losses = logged(tmp_path)
    assert len(losses) == 20 and np.isfinite(losses).all()
    assert checkpoints.manager(str(tmp_path), read_only=True).latest_step() == 20
    assert int(result["state"]["step"]) == 20
    for monitor in ("embedding_std", "rankme", "grad_norm", "learning_rate"):
        assert np.isfinite(logged(tmp_path, monitor)).all()
    # it learned: on a batch it never saw, against the final targets (teacher, center,
    # statistics), the trained parameters score better than the initial ones
    module = methods.get(method)
    batch = _fixed_batch(config)
    initial, _ = module.init(jax.random.PRNGKey(config.seed), config,
                             jax.tree.map(lambda x: x[:2], batch))
    final = jax.device_get(result["state"])
    before, after = (float(module.loss_fn(params, final["method_state"], batch,
                                          jax.random.PRNGKey(1), 0, config=config,
                                          axis_name=None)[0])
                     for params in (initial, final["params"]))
    assert after < before, (before, after)
    # the evaluation job restores exactly the backbone the method evaluates (DINO: teacher)
    restored_config, step, backbone, variables = job.restore_backbone(str(tmp_path))
    assert step == 20 and restored_config.method == method
    expected = module.backbone_variables(final["params"], final["method_state"])
    jax.tree.map(np.testing.assert_array_equal, expected, jax.device_get(variables))
    images = np.zeros((2, 16, 16, 3), np.float32)
    assert common.pooled(backbone.apply(variables, images, train=False)).shape[0] == 2


@pytest.mark.parametrize("method", ["dino", "byol", "moco_v3"])
def test_student_drop_path_teacher_without(method):
    """Stochastic depth in the student (DINO's recipe uses 0.1); the EMA teacher, as the
    official ones, has none: its outputs do not depend on the rng."""
    config = tiny_config(method)
    config.model.backbone_kwargs.update(depth=2, drop_path_rate=0.5)
    module = methods.get(method)
    batch = _fixed_batch(config, size=8)
    params, state = module.init(jax.random.PRNGKey(0), config, batch)
    losses = [float(module.loss_fn(params, state, batch, jax.random.PRNGKey(seed), 0,
                                   config=config, axis_name=None)[0]) for seed in (1, 2)]
    assert np.isfinite(losses).all() and losses[0] != losses[1]  # the student drops paths
    teacher = module.network(config, None, teacher=True)
    assert teacher.backbone.drop_path_rate == 0.0
    assert module.network(config, None).backbone.drop_path_rate == 0.5


def _one_step(config, devices, batch):
    """Parameters after one SGD step (lr 1) on ``batch``, on a mesh of ``devices``."""
    mesh = parallel.data_mesh(devices)
    method = methods.get(config.method)
    params, method_state = method.init(jax.random.PRNGKey(0), config, batch)
    tx, lr = optim.optimizer(config, total_steps=10, steps_per_epoch=10)
    state = {"step": np.zeros((), np.int32), "params": params,
             "opt_state": tx.init(params), "method_state": method_state}
    step = train.make_train_step(method, tx, config, mesh, lr, total_steps=10,
                                 steps_per_epoch=10)
    global_batch = next(pipeline.global_batches(iter([batch]), mesh))
    new_state, metrics = step(jax.device_put(state, parallel.replicated_sharding(mesh)),
                              global_batch)
    return jax.device_get(new_state), float(metrics["loss"])


@pytest.mark.parametrize("method", [m for m in ("simclr", "swav", "dino") if m in IMPLEMENTED])
def test_eight_device_step_equals_one_device_step(method):
    config = tiny_config(method, **{"optimizer.name": "sgd", "optimizer.momentum": 0.0,
                                    "optimizer.weight_decay": 0.0,
                                    "optimizer.base_learning_rate": 256 / 16,
                                    "optimizer.warmup_epochs": 0})
    batch = _fixed_batch(config, size=16, seed=0)
    one, loss_one = _one_step(config, jax.devices()[:1], batch)
    eight, loss_eight = _one_step(config, jax.devices(), batch)
    np.testing.assert_allclose(loss_eight, loss_one, rtol=1e-5)
    moved = jax.tree.map(lambda a, b: np.abs(a - b).max(), one["params"], eight["params"])
    assert max(jax.tree.leaves(moved)) < 1e-4, moved
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
                 one["method_state"], eight["method_state"])


def test_resume_is_bit_for_bit(tmp_path, monkeypatch):
    config = tiny_config("simclr", total_steps=6, **{"checkpoint.every_steps": 1})
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


def test_half_written_checkpoint_leaves_the_previous_one(tmp_path):
    config = tiny_config("simclr", total_steps=4)
    state = train.train(config, str(tmp_path))["state"]
    ckpt_dir = pathlib.Path(checkpoints.directory(str(tmp_path)))
    # what Orbax leaves when killed mid-write: a step directory under a temporary name
    partial = ckpt_dir / "8.orbax-checkpoint-tmp-1234"
    (partial / "state").mkdir(parents=True)
    (partial / "state" / "garbage").write_bytes(b"\0" * 10)
    manager = checkpoints.manager(str(tmp_path), read_only=True)
    assert manager.latest_step() == 4
    restored = checkpoints.restore_state(manager, state)
    jax.tree.map(np.testing.assert_array_equal, jax.device_get(state),
                 jax.device_get(restored))
    assert checkpoints.restore_config(manager).method == "simclr"


def test_non_finite_loss_stops_naming_the_step(tmp_path):
    config = tiny_config("simclr", **{"optimizer.base_learning_rate": 1e30})
    with pytest.raises(train.NonFiniteLoss, match=r"at step \d+; stopping"):
        train.train(config, str(tmp_path))


def test_batch_not_divisible_by_devices_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="12 is not divisible by the 8 devices"):
        train.train(tiny_config("simclr", batch_size=12), str(tmp_path))


def test_sigterm_saves_and_exits_then_resumes(tmp_path, monkeypatch):
    import os
    import signal
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
    assert checkpoints.manager(str(tmp_path), read_only=True).latest_step() == 3
    monkeypatch.setattr(pipeline, "global_batches", real)
    assert int(train.train(config, str(tmp_path))["state"]["step"]) == 8


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


def test_relative_workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    train.train(tiny_config("simclr", total_steps=1), "runs/relative")
    assert checkpoints.manager("runs/relative", read_only=True).latest_step() == 1
