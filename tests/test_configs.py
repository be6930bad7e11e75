"""Every file in configs/: it loads, names its own command, and its networks, optimizer
and loss build for the batches its recipe makes (under ``jax.eval_shape``: shapes only,
no compute)."""
import ast
import functools
import importlib.util
import pathlib

import jax
import numpy as np
import pytest
import tensorflow as tf

from jax_ssl import config as config_lib
from jax_ssl import methods, optim
from jax_ssl.data import recipes
from jax_ssl.methods import common

CONFIGS = sorted(p for p in (pathlib.Path(__file__).parent.parent / "configs").glob("*.py")
                 if p.name != "__init__.py")
# Tracing a config's networks and loss takes 0.3-2 s on 2 busy cores. By default the
# check covers the GPU/TPU configs, which no other test runs; the CPU configs (digits,
# Fashion-MNIST), whose methods test_train.py trains, are checked with -m slow.
CPU_DATASETS = ("_digits", "_fashion_mnist")
PARAMS = [pytest.param(p, id=p.stem,
                       marks=[pytest.mark.slow] if any(d in p.stem for d in CPU_DATASETS)
                       else [])
          for p in CONFIGS]


def load(path: pathlib.Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def recipe_batch(config) -> dict:
    """Zeros shaped like a 2-example batch of the config's recipe, what the trainer's
    ``sample_batch`` gives ``init``: the recipe runs eagerly on one blank image (tracing
    it into a tf.data graph would take 10-20× longer)."""
    recipe = recipes.make_recipe(config.data.recipe, **config.data.recipe_kwargs)
    side = config.data.get("image_size") or 2 * config.data.crop_size  # larger than crops
    views = recipe(tf.zeros((side, side, 3), tf.uint8), tf.zeros((2,), tf.int64))
    batch = {k: np.zeros((2, *v.shape), v.dtype.as_numpy_dtype) for k, v in views.items()}
    if getattr(methods.get(config.method), "USES_EXAMPLE_INDEX", False):
        batch["index"] = np.arange(2, dtype=np.int32)
    return batch


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_loads_and_names_its_command(path):
    config = load(path).get_config()
    assert config.method in methods.NAMES
    assert path.stem.startswith(config.method + "_"), (path.name, config.method)
    assert hasattr(methods.get(config.method), "loss_fn")
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and f"python -m jax_ssl.train --config configs/{path.name}" in doc, path.name


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_method_section_has_the_fields_of_the_cpu_config(path):
    """Same field names as the method's digits config (which the tests train), so a
    misspelt or missing field shows here rather than hours into a run."""
    config = load(path).get_config()
    reference = load(path.with_name(f"{config.method}_digits.py")).get_config()
    assert set(config[config.method]) == set(reference[config.method]), path.name


@pytest.mark.parametrize("path", PARAMS)
def test_model_optimizer_and_loss_build_for_the_recipe(path):
    config = load(path).get_config()
    method = methods.get(config.method)
    batch = recipe_batch(config)
    rng = jax.random.PRNGKey(0)
    params, state = jax.eval_shape(functools.partial(
        common.init_method, method, config=config, batch=batch, num_examples=1000), rng)
    assert jax.tree.leaves(params)
    steps_per_epoch, total_steps = 100, 1000
    tx, lr = optim.optimizer(config, total_steps, steps_per_epoch)
    jax.eval_shape(tx.init, params)
    assert np.isfinite(float(lr(steps_per_epoch * config.optimizer.warmup_epochs)))
    loss_fn = functools.partial(method.loss_fn, config=config, axis_name=None)
    loss, (new_state, _) = jax.eval_shape(loss_fn, params, state, batch, rng, 0)
    assert loss.shape == ()
    assert jax.tree.structure(new_state) == jax.tree.structure(state)


def test_bad_names_in_a_config_fail_with_a_clear_message():
    from jax_ssl.config import base
    with pytest.raises(ValueError, match="unknown method 'simclrr'; choose one of simclr"):
        methods.get("simclrr")
    with pytest.raises(ValueError, match="unknown dataset preset 'cifar100'"):
        base("simclr", "cifar100")
    config = load(CONFIGS[0].with_name("simclr_cifar10.py")).get_config()
    config.optimizer.name = "adam"
    with pytest.raises(ValueError, match="optimizer.name must be 'lars', 'adamw' or 'sgd'"):
        optim.optimizer(config, total_steps=10, steps_per_epoch=10)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_validates(path):
    """Every rule of ``config.validate`` holds for each shipped config (tests/
    test_config_validation.py shows each rule refusing a bad value)."""
    assert list(config_lib.problems(load(path).get_config())) == []


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_key_is_documented(path):
    """``--print_config`` explains every key: a key added to a config or to ``base`` without
    a line in ``config.KEY_HELP`` (or a documented section) fails here."""
    config = load(path).get_config()
    assert config_lib.undocumented_keys(config) == []
    assert "(undocumented)" not in config_lib.describe(config)
