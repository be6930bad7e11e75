"""Schedules and optimizers (DESIGN.md §6) against independent NumPy references of the
official codes: DINO's ``cosine_scheduler`` and ``clip_gradients``, SimCLR's LARS."""
import functools
import pathlib

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import pytest
from test_configs import recipe_batch
from test_train import tiny_config

from jax_ssl import config as config_lib
from jax_ssl import methods, optim, parallel, train
from jax_ssl.data import pipeline

CONFIGS = pathlib.Path(__file__).parent.parent / "configs"


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


def steps(tx, params, grads):
    """(params before the step, its update) of successive steps, one per ``grads`` tree."""
    state = tx.init(params)
    for g in grads:
        update, state = tx.update(g, state, params)
        yield params, update
        params = optax.apply_updates(params, update)


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
    applied = [-float(u["w"][0]) for _, u in steps(tx, {"w": jnp.zeros(3)},
                                                   [{"w": jnp.ones(3)}] * 20)]
    np.testing.assert_allclose(applied, reference, rtol=1e-6)


def test_dino_weight_decay_applied_each_step_follows_its_cosine_schedule():
    """AdamW at learning rate 1 on zero gradients moves a kernel by exactly −wd(k)·p: the
    decay read off each step is DINO's ``cosine_scheduler(0.04, 0.4)``; biases and norm
    scales do not decay."""
    config = config_lib.from_file(CONFIGS / "dino_digits.py")
    config.batch_size = 256
    config.optimizer.update(base_learning_rate=1.0, final_learning_rate=1.0, warmup_epochs=0)
    tx, _ = optim.optimizer(config, total_steps=8, steps_per_epoch=4)
    params = {"kernel": jnp.full((2, 3), 2.0), "bias": jnp.ones(3), "scale": jnp.ones(3)}
    zeros = jax.tree.map(jnp.zeros_like, params)
    applied = []
    for before, update in steps(tx, params, [zeros] * 8):
        applied.append(-float(update["kernel"][0, 0] / before["kernel"][0, 0]))
        assert not np.any(update["bias"]) and not np.any(update["scale"])
    np.testing.assert_allclose(applied, dino_cosine_scheduler(0.04, 0.4, 8), rtol=1e-5)


def vit_like_params(depth=2):
    leaf = {"kernel": jnp.ones((2, 3)), "bias": jnp.ones(3)}
    backbone = {"patch_embed": {"proj": leaf}, "cls_token": jnp.ones((1, 1, 3)),
                "pos_embed": jnp.ones((1, 5, 3)), "norm": {"scale": jnp.ones(3)},
                **{f"blocks_{i}": {"attn": leaf} for i in range(depth)}}
    return {"backbone": backbone, "head": {"mlp_0": leaf}}


def test_layer_decay_multiplies_each_layers_update_as_dinov2_groups():
    """DINOv2's ``get_vit_lr_decay_rate`` at decay 0.5, depth 2: embeddings 0.5³, the patch
    embedding also × 0.2, block i 0.5^(2 − i), the final norm and the head 1; one AdamW
    step with weight decay is the plain step times these factors."""
    params = vit_like_params()
    factors = optim.layer_lr_multipliers(params, 0.5, 0.2)
    assert factors["backbone"]["patch_embed"]["proj"]["kernel"] == pytest.approx(0.025)
    assert factors["backbone"]["cls_token"] == factors["backbone"]["pos_embed"] == 0.125
    assert [factors["backbone"][f"blocks_{i}"]["attn"]["bias"] for i in (0, 1)] == [0.25, 0.5]
    assert factors["backbone"]["norm"]["scale"] == factors["head"]["mlp_0"]["kernel"] == 1.0
    grads = jax.tree.map(lambda p: jnp.linspace(-1, 1, p.size).reshape(p.shape), params)
    config = optimizer_config("adamw", learning_rate=0.1, weight_decay=0.05)
    plain, _ = optim.optimizer(config, total_steps=4, steps_per_epoch=2)
    config.optimizer.update(layer_decay=0.5, patch_embed_lr_mult=0.2)
    decayed, _ = optim.optimizer(config, total_steps=4, steps_per_epoch=2)
    (_, want), = steps(plain, params, [grads])
    (_, got), = steps(decayed, params, [grads])
    jax.tree.map(lambda g, w, f: np.testing.assert_allclose(g, w * f, rtol=1e-6),
                 got, want, factors)
    with pytest.raises(ValueError, match="layer_decay needs a ViT backbone"):
        optim.layer_lr_multipliers({"backbone": {"conv1": params["head"]}}, 0.5)


def simclr_lars_update(w, g, velocity, *, lr, weight_decay, momentum, trust_coefficient,
                       adapted):
    """(update, velocity) of SimCLR's LARS (classic momentum) for one tensor; ``adapted``
    tensors take weight decay and the trust ratio η‖w‖/‖g‖, the others plain momentum."""
    trust = 1.0
    if adapted:
        g = g + weight_decay * w
        w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
        if w_norm > 0 and g_norm > 0:
            trust = trust_coefficient * w_norm / g_norm
    velocity = momentum * velocity + lr * trust * g
    return -velocity, velocity


def test_lars_adapts_kernels_and_leaves_biases_and_norms_to_momentum_sgd(rng):
    """Two LARS steps on a dense layer and a norm layer: the kernel's updates are SimCLR's
    with decay and trust ratio, the biases' and the scale's momentum SGD of the raw
    gradient (SimCLR excludes 'bias' and 'batch_normalization' by name)."""
    hyper = dict(lr=0.5, weight_decay=0.1, momentum=0.9, trust_coefficient=0.02)
    config = optimizer_config("lars", learning_rate=hyper["lr"],
                              weight_decay=hyper["weight_decay"], momentum=hyper["momentum"],
                              trust_coefficient=hyper["trust_coefficient"])
    tx, _ = optim.optimizer(config, total_steps=10, steps_per_epoch=5)
    shapes = {"dense_kernel": (3, 2), "dense_bias": (2,), "norm_scale": (2,), "norm_bias": (2,)}
    params = {k: 1 + rng.normal(size=shape).astype(np.float32) for k, shape in shapes.items()}
    grads = [{k: rng.normal(size=shape).astype(np.float32) for k, shape in shapes.items()}
             for _ in range(2)]
    velocity = {k: np.zeros(shape) for k, shape in shapes.items()}
    for step, (before, update) in enumerate(steps(tx, params, grads)):
        for name in shapes:
            adapted = name == "dense_kernel"
            expected, velocity[name] = simclr_lars_update(
                np.asarray(before[name], np.float64), grads[step][name], velocity[name],
                adapted=adapted, **hyper)
            np.testing.assert_allclose(update[name], expected, rtol=1e-5, err_msg=name)
            if not adapted and step == 0:  # momentum SGD's first step: −lr·g
                np.testing.assert_allclose(update[name], -hyper["lr"] * grads[0][name],
                                           rtol=1e-6, err_msg=name)


def dino_clip_gradients(g, clip):
    """facebookresearch/dino ``clip_gradients`` for one tensor."""
    coefficient = clip / (np.linalg.norm(g) + 1e-6)
    return g * coefficient if coefficient < 1 else g


def test_gradients_are_clipped_per_part_by_each_parts_global_norm():
    """DINOv2's ``clip_grad_norm_(3.0)`` on each student submodule: the backbone's
    gradient (global norm 6.5) is scaled as a whole to norm 3, the head's (norm 1) kept."""
    config = optimizer_config("sgd", momentum=0.0, clip_per_part=3.0)
    tx, _ = optim.optimizer(config, total_steps=10, steps_per_epoch=5)
    grads = {"backbone": {"a": jnp.array([0.0, 6.0]), "b": jnp.array([2.5])},
             "head": {"c": jnp.array([0.6]), "d": jnp.array([0.8])}}
    params = jax.tree.map(jnp.ones_like, grads)
    (_, update), = steps(tx, params, [grads])
    scale = 3.0 / (6.5 + 1e-6)
    for name in ("a", "b"):
        np.testing.assert_allclose(-update["backbone"][name], scale * grads["backbone"][name],
                                   rtol=1e-6)
    jax.tree.map(lambda u, g: np.testing.assert_allclose(-u, g, rtol=1e-6),
                 update["head"], grads["head"])


def test_sqrt_lr_scaling_is_dinov2s_rule():
    """``lr_scaling="sqrt"``: base × √(batch / 1024) (dinov2 ``sqrt_wrt_1024``)."""
    config = optimizer_config("sgd", learning_rate=0.004, final_learning_rate=0.004,
                              lr_scaling="sqrt")
    config.batch_size = 4096
    _, learning_rate = optim.optimizer(config, total_steps=20, steps_per_epoch=2)
    np.testing.assert_allclose(learning_rate(0), 0.008, rtol=1e-6)


def test_gradients_are_clipped_per_tensor_not_by_the_global_norm():
    """Plain SGD at learning rate 1 with ``clip_per_tensor`` 3: a gradient of norm 6 is
    scaled to norm 3, one of norm 1 is untouched (a global-norm clip would shrink both)."""
    config = optimizer_config("sgd", momentum=0.0, clip_per_tensor=3.0)
    tx, _ = optim.optimizer(config, total_steps=10, steps_per_epoch=5)
    grads = {"over": jnp.array([0.0, 6.0]), "under": jnp.array([0.6, 0.8])}
    params = jax.tree.map(jnp.ones_like, grads)
    (_, update), = steps(tx, params, [grads])
    for name, g in grads.items():
        np.testing.assert_allclose(-update[name], dino_clip_gradients(np.asarray(g), 3.0),
                                   rtol=1e-6, err_msg=name)
    np.testing.assert_allclose(np.linalg.norm(update["over"]), 3.0, rtol=1e-6)
    np.testing.assert_array_equal(-update["under"], grads["under"])


def initialised(method, config, batch):
    """``method.init`` of seed 0, compiled: one compilation instead of one per operation."""
    return jax.jit(functools.partial(method.init, config=config, batch=batch))(
        jax.random.PRNGKey(0))


def byol_momentum(base, k, total_steps):
    """BYOL's τ = 1 − (1 − τ_base)(cos(πk/K) + 1)/2 (DINO's and MoCo v3's too)."""
    return 1 - (1 - base) * (np.cos(np.pi * k / total_steps) + 1) / 2


def test_ema_momentum_is_the_cosine_from_base_to_one():
    """τ_base at step 0, 1 at step K."""
    k = np.array([0, 1, 3, 5, 9, 10])
    expected = byol_momentum(0.9, k, 10)
    np.testing.assert_allclose([optim.ema_momentum(0.9, 10)(s) for s in k], expected,
                               rtol=1e-6)
    np.testing.assert_allclose(expected[[0, -1]], [0.9, 1.0])


@pytest.mark.parametrize("method", ["byol", "moco_v3", "dino"])
def test_teacher_update_is_the_ema_with_the_momentum_of_the_step(method, rng):
    """``after_update`` at step k: teacher ← m(k)·teacher + (1 − m(k))·student for the
    backbone and head (not BYOL's and MoCo's predictor), m(k) the cosine from 0.9; random
    values in the method's parameter and state trees."""
    config = tiny_config(method)
    config[method].base_momentum = 0.9
    module = methods.get(method)
    shapes = jax.eval_shape(functools.partial(module.init, config=config,
                                              batch=recipe_batch(config)),
                            jax.random.PRNGKey(0))
    params, state = jax.tree.map(lambda x: rng.normal(size=x.shape).astype(x.dtype), shapes)
    student = jax.tree.map(lambda p: p + 1.0, params)  # the student after a step
    step, total_steps = 3, 10
    new_state = module.after_update(student, state, step, config=config,
                                    total_steps=total_steps, steps_per_epoch=5)
    m = byol_momentum(0.9, step, total_steps)
    assert set(new_state["teacher"]) == {"backbone", "head"}
    expected = jax.tree.map(lambda t, s: m * np.asarray(t) + (1 - m) * np.asarray(s),
                            state["teacher"], {k: student[k] for k in new_state["teacher"]})
    jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-6, atol=1e-7),
                 new_state["teacher"], expected)


def trainer_states(config, num_steps, *, steps_per_epoch, total_steps=10):
    """The trainer's state (on the host) before and after each of ``num_steps`` steps on
    one device, each step on the same batch of 16 random images."""
    rng = np.random.default_rng(0)
    batch = {k: rng.uniform(size=(16, *v.shape[1:])).astype(v.dtype)
             for k, v in recipe_batch(config).items()}
    mesh = parallel.data_mesh(jax.devices()[:1])
    method = methods.get(config.method)
    params, method_state = initialised(method, config, batch)
    tx, learning_rate = optim.optimizer(config, total_steps, steps_per_epoch)
    step = train.make_train_step(method, tx, config, mesh, learning_rate,
                                 total_steps=total_steps, steps_per_epoch=steps_per_epoch)
    global_batch = next(pipeline.global_batches(iter([batch]), mesh))
    states = [jax.device_get({"step": np.zeros((), np.int32), "params": params,
                              "opt_state": tx.init(params), "method_state": method_state})]
    for _ in range(num_steps):  # the step donates its input: each state is copied out first
        state, _ = step(jax.device_put(states[-1], parallel.replicated_sharding(mesh)),
                        global_batch)
        states.append(jax.device_get(state))
    return states


# Heads shrunk and no local crops: the step compiles in seconds.
SMALL_HEADS = {"dino": {"dino.hidden_dim": 32, "dino.bottleneck_dim": 16, "dino.out_dim": 64},
               "swav": {"swav.hidden_dim": 32, "swav.output_dim": 16,
                        "swav.num_prototypes": 8}}


def small(method, **overrides):
    return tiny_config(method, **{"data.recipe_kwargs.num_local": 0, **SMALL_HEADS[method],
                                  **overrides})


def max_change(before, after):
    return max(float(np.abs(a - b).max()) for a, b in
               zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True))


def adam_moments(state, *keys):
    """Adam's first and second moments of the tensor at ``keys`` of the params."""
    def at(tree):
        for key in keys:
            tree = tree[key]
        return tree
    return [at(optax.tree_utils.tree_get(state["opt_state"], name)) for name in ("mu", "nu")]


def test_dino_last_layer_frozen_the_first_epoch_and_teacher_follows_each_step():
    """``freeze_last_layer`` 1 with 2 steps an epoch: steps 0 and 1 leave the head's last
    layer and its Adam moments exactly as they were, step 2 moves them; every step moves
    the teacher by the EMA with that step's momentum."""
    config = small("dino", **{"dino.freeze_last_layer": 1, "dino.base_momentum": 0.9})
    states = trainer_states(config, 3, steps_per_epoch=2)
    last_layer = [s["params"]["head"]["last_layer"] for s in states]
    moments = [adam_moments(s, "head", "last_layer") for s in states]
    assert max_change(last_layer[0], last_layer[1]) == 0 == max_change(last_layer[0],
                                                                       last_layer[2])
    assert not np.any(jax.tree.leaves(moments[1:3]))
    assert max_change(last_layer[2], last_layer[3]) > 0
    assert all(np.any(m) for m in jax.tree.leaves(moments[3]))
    assert max_change(states[0]["params"]["backbone"], states[1]["params"]["backbone"]) > 0
    for k in range(3):
        m = byol_momentum(0.9, k, 10)
        expected = jax.tree.map(lambda t, s, m=m: m * t + (1 - m) * s,
                                states[k]["method_state"]["teacher"],
                                {p: states[k + 1]["params"][p] for p in ("backbone", "head")})
        jax.tree.map(lambda a, e: np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-7),
                     states[k + 1]["method_state"]["teacher"], expected)


def test_swav_prototypes_frozen_for_the_first_steps():
    """``freeze_prototypes_steps`` 2: steps 0 and 1 take no update of the prototypes (their
    Adam moments stay zero; re-normalising the unit vectors, as SwAV does every step,
    moves them by rounding only), step 2 moves them as a step of AdamW does."""
    config = small("swav", **{"swav.freeze_prototypes_steps": 2})
    states = trainer_states(config, 3, steps_per_epoch=5)
    prototypes = [s["params"]["prototypes"] for s in states]
    moments = [adam_moments(s, "prototypes") for s in states]
    assert max(max_change(prototypes[0], p) for p in prototypes[1:3]) < 1e-6
    assert not np.any(jax.tree.leaves(moments[1:3]))
    assert max_change(prototypes[2], prototypes[3]) > 1e-4
    assert all(np.any(m) for m in jax.tree.leaves(moments[3]))
