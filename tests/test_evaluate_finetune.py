"""End-to-end fine-tuning (MAE's recipe): it learns, each block trains at its stated
learning-rate scale, weight decay spares what MAE spares, Mixup/CutMix and the schedule
by hand."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl import models, parallel
from jax_ssl.data import recipes, sources
from jax_ssl.evaluate import finetune
from jax_ssl.evaluate.protocols import ProbeData


def _tiny_vit(depth=3):
    return models.backbone("vit_ti16", patch_size=4, image_size=16, embed_dim=32,
                           depth=depth, num_heads=2)


def _net_params(depth=3):
    net = finetune.FinetuneNet(_tiny_vit(depth=depth), num_classes=4)
    return jax.jit(lambda: net.init(jax.random.PRNGKey(0), jnp.zeros((1, 16, 16, 3)),
                                    train=False))()["params"]


def test_fine_tuning_learns_separable_data_from_a_random_backbone():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 96)
    images = rng.integers(0, 60, (96, 16, 16, 3)).astype(np.uint8)
    for image, label in zip(images, labels, strict=True):  # red or green: Mixup-proof
        image[..., label] += 150
    train = sources.array_source("red or green", "train", images[:64], labels[:64], "rg")
    test = sources.array_source("red or green", "test", images[64:], labels[64:], "rg")
    recipe = recipes.make_recipe("eval", size=16, resize_size=16)
    data = ProbeData(train, test, recipe, recipe, parallel.data_mesh())
    backbone = _tiny_vit()
    variables = jax.jit(lambda: backbone.init(jax.random.PRNGKey(1), jnp.zeros((1, 16, 16, 3)),
                                              train=False))()
    out = finetune.finetune(backbone, variables, data, batch_size=16, epochs=6,
                            base_learning_rate=0.1, warmup_epochs=1)
    assert out["top1"] >= 0.9, out
    assert out["steps"] == 24 and out["layer_decay"] == 0.65


def test_layer_decay_gives_each_block_its_learning_rate_scale():
    params = _net_params(depth=3)
    tx = finetune.optimizer(1.0, params, weight_decay=0.0, layer_decay=0.5)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    # Adam's first step is -lr·g/|g| = -1: what is left is each tensor's layer factor
    expected = {"patch_embed": 0.5 ** 4, "cls_token": 0.5 ** 4, "pos_embed": 0.5 ** 4,
                "blocks_0": 0.5 ** 3, "blocks_1": 0.5 ** 2, "blocks_2": 0.5, "norm": 1.0}
    for name, factor in expected.items():
        for leaf in jax.tree.leaves(updates["backbone"][name]):
            np.testing.assert_allclose(leaf, -factor, rtol=1e-5, err_msg=name)
    for name in ("fc_norm", "head"):
        for leaf in jax.tree.leaves(updates[name]):
            np.testing.assert_allclose(leaf, -1.0, rtol=1e-5, err_msg=name)


def test_weight_decay_spares_vectors_and_tokens():
    params = _net_params()
    tx = finetune.optimizer(1.0, params, weight_decay=0.1, layer_decay=None)
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, _ = tx.update(zeros, tx.init(params), params)
    flat = dict(jax.tree_util.tree_leaves_with_path(updates))
    for path, value in jax.tree_util.tree_leaves_with_path(params):
        name = jax.tree_util.keystr(path)
        spared = value.ndim == 1 or "pos_embed" in name or "cls_token" in name
        np.testing.assert_allclose(flat[path], 0.0 if spared else -0.1 * value, atol=1e-7,
                                   err_msg=name)


def test_cutmix_pastes_a_box_and_weighs_the_targets_by_its_area():
    images = jnp.stack([jnp.full((8, 10, 1), float(i)) for i in range(4)])
    labels = jnp.array([0, 1, 2, 3])
    for seed in range(20):
        mixed, targets = finetune.mix(jax.random.PRNGKey(seed), images, labels,
                                      num_classes=4, switch_prob=1.0, smoothing=0.0)
        for i in range(4):
            kept = float(jnp.mean(mixed[i] == i))  # the rest is image 3 - i, pasted
            assert bool(jnp.all((mixed[i] == i) | (mixed[i] == 3 - i)))
            np.testing.assert_allclose(targets[i, i], kept, atol=1e-6)
            np.testing.assert_allclose(targets[i, 3 - i], 1 - kept, atol=1e-6)


def test_mixup_blends_images_and_smoothed_targets_by_one_lambda():
    images = jnp.stack([jnp.full((4, 4, 3), float(i)) for i in range(4)])
    mixed, targets = finetune.mix(jax.random.PRNGKey(3), images, jnp.array([0, 1, 2, 3]),
                                  num_classes=4, switch_prob=0.0, smoothing=0.1)
    lam = 1 - float(mixed[0, 0, 0, 0]) / 3  # image 0 ← 0·λ + 3·(1 − λ)
    np.testing.assert_allclose(mixed[1], 1 * lam + 2 * (1 - lam), rtol=1e-5)
    on, off = 1 - 0.1 + 0.1 / 4, 0.1 / 4  # timm's smoothed one-hot
    np.testing.assert_allclose(targets[0], [on * lam + off * (1 - lam), off, off,
                                            off * lam + on * (1 - lam)], rtol=1e-5)
    np.testing.assert_allclose(targets.sum(axis=1), 1.0, rtol=1e-6)


def test_the_schedule_warms_up_then_follows_the_half_cosine():
    rate = finetune.schedule(1.0, epochs=10, warmup_epochs=2, steps_per_epoch=5, min_lr=0.1)
    np.testing.assert_allclose(rate(0), 0.0)
    np.testing.assert_allclose(rate(5), 0.5)  # epoch 1 of 2 of warm-up
    np.testing.assert_allclose(rate(10), 1.0)
    np.testing.assert_allclose(rate(30), 0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * 4 / 8)),
                               rtol=1e-6)
    np.testing.assert_allclose(rate(50), 0.1, rtol=1e-6)


@pytest.mark.parametrize("name", ["resnet18"])
def test_a_resnet_fine_tunes_its_batch_norm_statistics_too(name):
    backbone = models.backbone(name)
    net = finetune.FinetuneNet(backbone, num_classes=3)
    variables = jax.jit(lambda: net.init(jax.random.PRNGKey(0), jnp.zeros((2, 32, 32, 3)),
                                         train=False))()
    assert set(variables) == {"params", "batch_stats"}
    assert set(variables["params"]) == {"backbone", "head"}
