"""Linear probe on frozen, precomputed features: multinomial logistic regression.

Features are standardised with the training statistics; the L2 penalty is chosen from a
small sweep by accuracy on a stratified held-out part of the training examples, then
the probe is refit on all of them (the protocol of SimCLR's and BYOL's logistic
regression on frozen features, where the paper's numbers come from L-BFGS fits).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jax_ssl.evaluate.labels import label_subset

WEIGHT_DECAYS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)


@functools.partial(jax.jit, static_argnames=("num_classes", "steps"))
def fit_logistic(x, y, weight_decay, *, num_classes: int, steps: int = 100):
    """Weights [D, C] and bias [C] minimising mean cross-entropy + wd/2 · ‖W‖² (L-BFGS)."""
    params = {"w": jnp.zeros((x.shape[1], num_classes)), "b": jnp.zeros(num_classes)}

    def objective(p):
        logits = x @ p["w"] + p["b"]
        nll = -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), y[:, None], 1))
        return nll + 0.5 * weight_decay * jnp.sum(p["w"] ** 2)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)

    def step(_, carry):
        params, state = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad,
                                    value_fn=objective)
        return optax.apply_updates(params, updates), state

    params, _ = jax.lax.fori_loop(0, steps, step, (params, opt.init(params)))
    return params


def _accuracy(params, x, y) -> float:
    return float(jnp.mean(jnp.argmax(x @ params["w"] + params["b"], -1) == y))


def linear_probe(train_features, train_labels, test_features, test_labels, *, num_classes,
                 weight_decays=WEIGHT_DECAYS, held_out: float = 0.2,
                 max_sweep_examples: int = 10_000, seed: int = 0) -> dict:
    """Top-1 test accuracy of the probe and the weight decay the sweep chose.

    The sweep fits on at most ``max_sweep_examples`` (a class-balanced sample) of the
    training examples outside the held-out part, which keeps it cheap on large splits.
    """
    train_features = np.asarray(train_features, np.float32)
    mean = train_features.mean(0)
    std = train_features.std(0) + 1e-6
    x = jnp.asarray((train_features - mean) / std)
    y = jnp.asarray(train_labels, jnp.int32)
    x_test = jnp.asarray((np.asarray(test_features, np.float32) - mean) / std)
    y_test = jnp.asarray(test_labels, jnp.int32)
    val = np.zeros(len(y), bool)
    val[label_subset(train_labels, fraction=held_out, seed=seed)] = True
    fit_idx = np.flatnonzero(~val)
    if len(fit_idx) > max_sweep_examples:
        fit_idx = fit_idx[label_subset(np.asarray(train_labels)[fit_idx],
                                       fraction=max_sweep_examples / len(fit_idx), seed=seed)]
    fit = functools.partial(fit_logistic, num_classes=num_classes)
    scores = [_accuracy(fit(x[fit_idx], y[fit_idx], wd), x[val], y[val])
              for wd in weight_decays]
    best = weight_decays[int(np.argmax(scores))]
    return {"top1": _accuracy(fit(x, y, best), x_test, y_test), "weight_decay": best}
