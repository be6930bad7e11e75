"""DINOv2's masks, masked-token buffer and losses against their definitions."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, parallel
from jax_ssl.config import cpu_config
from jax_ssl.methods import dinov2

GRID = (14, 14)  # 224 px in 16-px patches


def masks_of(config, batch_size, devices=1, seed=3):
    """[2·B_global, P] masks of the global batch drawn on ``devices`` devices (each
    device's view-major rows, concatenated in device order)."""
    key = jax.random.PRNGKey(seed)
    if devices == 1:
        return np.asarray(dinov2.global_crop_masks(key, config, batch_size, GRID, None))
    mesh = parallel.data_mesh(jax.devices()[:devices])
    draw = jax.shard_map(
        lambda k: dinov2.global_crop_masks(k, config, batch_size // devices, GRID,
                                           parallel.DATA_AXIS)[None],
        mesh=mesh, in_specs=P(), out_specs=P(parallel.DATA_AXIS))
    per_device = np.asarray(jax.jit(draw)(key))  # [devices, 2·b, P]
    crops = per_device.reshape(devices, 2, batch_size // devices, -1).transpose(1, 0, 2, 3)
    return crops.reshape(2 * batch_size, -1)


def test_half_the_global_crops_masked_at_stratified_ratios_within_caps():
    """int(2B·½) of the 2B slots are masked; sorted, the masked counts stay under the
    sorted caps int(P·r_{i+1}) of the linspace(0.1, 0.5) strata and spread over them;
    every block is at most half the grid, so none is a single block over P/2; the whole
    fits the static buffer."""
    config = cpu_config("dinov2", "digits")
    batch_size, patches = 32, GRID[0] * GRID[1]
    masks = masks_of(config, batch_size)
    counts = masks.sum(axis=1)
    masked = np.sort(counts[counts > 0])
    assert len(masked) == batch_size  # int(64 · 0.5)
    ratios = np.linspace(0.1, 0.5, batch_size + 1).astype(np.float32)
    caps = np.floor(patches * ratios[1:])
    assert np.all(masked <= caps)
    # the strata: about 0.1·P at the low end, about 0.5·P at the high end
    assert masked[0] < 0.2 * patches and masked[-1] > 0.4 * patches
    assert 0.25 < masked.mean() / patches < 0.35
    assert counts.sum() <= dinov2.masked_token_bound(config, batch_size, 1, patches)


def test_an_images_masks_are_the_same_on_any_number_of_devices():
    config = cpu_config("dinov2", "digits")
    one = masks_of(config, 16)
    np.testing.assert_array_equal(masks_of(config, 16, devices=8), one)
    assert one.any() and not one.all()


def test_buffer_bound_is_the_collates_upperbound_on_one_device():
    """dinov2 collate: upperbound = Σ_i int(P·probs[i+1]) over the n masked slots (its
    example b=64, P=196 gives 3771 with torch's float32 linspace)."""
    config = cpu_config("dinov2", "digits")
    assert dinov2.masked_token_bound(config, 64, 1, 196) == 3771
    # on 4 devices a device may hold the 2b slots with the largest caps
    ratios = np.linspace(0.1, 0.5, 64 + 1).astype(np.float32)
    caps = sorted((int(196 * float(r)) for r in ratios[1:]), reverse=True)
    assert dinov2.masked_token_bound(config, 16, 4, 196) == sum(caps[:32])


def test_gathered_tokens_give_ibot_patch_loss_and_the_masked_token_center(rng):
    """The buffer of masked tokens (padded), its weights and valid flags: the gathered
    loss equals ``ibot_patch_loss`` over the full token grid, and the patch center is
    the mean over the masked tokens only."""
    config = cpu_config("dinov2", "digits")
    masks = masks_of(config, 4)  # [8, 196]
    indices, valid, weights = dinov2._masked_tokens(config, jnp.asarray(masks), None)
    assert int(valid.sum()) == masks.sum() and len(valid) > masks.sum()  # padded
    student = rng.normal(size=masks.shape + (5,)).astype(np.float32)
    teacher = jax.nn.softmax(rng.normal(size=masks.shape + (5,)) * 3.0).astype(np.float32)
    flat = functools.partial(lambda x: x.reshape(-1, 5)[np.asarray(indices)])
    gathered = losses.ibot_gathered_patch_loss(flat(student), flat(teacher), weights,
                                               num_images=8)
    np.testing.assert_allclose(gathered, losses.ibot_patch_loss(student, teacher, masks),
                               rtol=1e-5)
    center = losses.update_center(flat(student), np.zeros(5), center_momentum=0.0,
                                  valid=valid)
    np.testing.assert_allclose(center, student[masks].mean(axis=0), rtol=1e-5, atol=1e-6)
