"""Schedules and optimizers (DESIGN.md §6) against independent NumPy references of the
official codes: DINO's ``cosine_scheduler`` and ``clip_gradients``, SimCLR's LARS."""
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest

from jax_ssl import optim


def dino_cosine_scheduler(base, final, total_steps, warmup_steps=0, warmup_start=0.0):
    """facebookresearch/dino ``utils.cosine_scheduler`` over steps: ``np.linspace`` from
    ``warmup_start`` to ``base`` (both ends included), then the cosine over the rest."""
    warmup = np.linspace(warmup_start, base, warmup_steps)
    i = np.arange(total_steps - warmup_steps)
    cosine = final + 0.5 * (base - final) * (1 + np.cos(np.pi * i / len(i)))
    return np.concatenate([warmup, cosine])


def optimizer_config(name, *, learning_rate=1.0, final_learning_rate=None, warmup_epochs=0,
                     weight_decay=0.0, **extra):
    """A config whose learning rate is ``learning_rate`` (batch 256: the scaling rule's
    factor is 1), constant unless ``final_learning_rate`` differs."""
    final = learning_rate if final_learning_rate is None else final_learning_rate
    return ml_collections.ConfigDict({"batch_size": 256, "optimizer": {
        "name": name, "base_learning_rate": learning_rate, "final_learning_rate": final,
        "warmup_epochs": warmup_epochs, "weight_decay": weight_decay, **extra}})


def updates_over_steps(tx, params, grads, num_steps):
    """The update of each of ``num_steps`` steps, applied one after the other."""
    state, updates = tx.init(params), []
    for _ in range(num_steps):
        update, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, update)
        updates.append((update, params))
    return updates


STEPS = (0, 4, 5, 6, 12, 19)  # start, last warm-up step, first cosine step, mid, last


def test_warmup_cosine_is_dinos_cosine_scheduler():
    reference = dino_cosine_scheduler(2.0, 0.1, 20, warmup_steps=5, warmup_start=0.5)
    schedule = optim.warmup_cosine(2.0, 0.1, 20, warmup_steps=5, warmup_start=0.5)
    np.testing.assert_allclose([schedule(s) for s in STEPS], reference[list(STEPS)],
                               rtol=1e-6)
    assert float(schedule(4)) == float(schedule(5)) == 2.0  # DINO reaches base twice


def test_optimizer_applies_the_scaled_learning_rate_of_each_step():
    """SGD without momentum on a gradient of ones: step k's update is −lr(k), with lr the
    schedule of base × batch / 256, 2.5 warm-up epochs of 2 steps, cosine to 0.01."""
    config = optimizer_config("sgd", learning_rate=0.4, final_learning_rate=0.01,
                              warmup_epochs=2.5, momentum=0.0)
    config.batch_size = 512
    tx, learning_rate = optim.optimizer(config, total_steps=20, steps_per_epoch=2)
    reference = dino_cosine_scheduler(0.8, 0.01, 20, warmup_steps=5)
    np.testing.assert_allclose([learning_rate(s) for s in STEPS], reference[list(STEPS)],
                               rtol=1e-6)
    params = {"w": jnp.zeros(3)}
    applied = [-float(u["w"][0]) for u, _ in
               updates_over_steps(tx, params, {"w": jnp.ones(3)}, 20)]
    np.testing.assert_allclose(applied, reference, rtol=1e-6)
