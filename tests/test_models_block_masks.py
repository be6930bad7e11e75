"""Block-wise masks (iBOT / DINOv2 / BEiT ``MaskingGenerator``) drawn under jit."""
import math
import random

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jax_ssl.models import block_masks


def beit_mask(rng: random.Random, height, width, num_masked, min_block, max_block=None,
              aspect_ratio=(0.3, 1 / 0.3)):
    """The algorithm of BEiT's MaskingGenerator as iBOT's loader.py runs it, in Python."""
    mask = np.zeros((height, width), bool)
    count = 0
    log_aspect = (math.log(aspect_ratio[0]), math.log(aspect_ratio[1]))
    while count < num_masked:
        remaining = num_masked - count
        if max_block is not None:
            remaining = min(remaining, max_block)
        delta = 0
        for _ in range(10):
            area = rng.uniform(min_block, remaining)
            aspect = math.exp(rng.uniform(*log_aspect))
            h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if w < width and h < height:
                top, left = rng.randint(0, height - h), rng.randint(0, width - w)
                new = h * w - mask[top:top + h, left:left + w].sum()
                if 0 < new <= remaining:
                    mask[top:top + h, left:left + w] = True
                    delta = new
            if delta > 0:
                break
        if delta == 0:
            break
        count += delta
    return mask


@pytest.mark.parametrize("ratio,grid,max_block", [(0.3, 14, None), (0.1, 14, None),
                                                  (0.5, 14, None), (0.4, 16, 128)])
def test_counts_follow_the_reference_generator(ratio, grid, max_block):
    """Over 1,000 masks, the masked count's mean and spread match the Python reference
    (different random numbers, the same distribution), and no mask exceeds its target."""
    target = ratio * grid * grid
    min_block = (grid // 3) ** 2
    rng = random.Random(0)
    reference = np.array([beit_mask(rng, grid, grid, target, min_block, max_block).sum()
                          for _ in range(1000)])
    ours = np.asarray(jax.jit(lambda key: block_masks.block_masks(
        key, jnp.arange(1000), (grid, grid), target, min_block=min_block,
        max_block=max_block))(jax.random.PRNGKey(0))).sum(1)
    assert ours.max() <= target and reference.max() <= target
    assert abs(ours.mean() - reference.mean()) < 0.03 * target, (ours.mean(), reference.mean())
    assert abs(ours.std() - reference.std()) < 0.25 * reference.std() + 0.5


def test_no_target_no_mask_and_a_reachable_target_is_met_in_blocks():
    """Target 0 masks nothing; a target of 40 on 14×14 (blocks of at least 16) is met
    from below: at least one block, never more than 40."""
    counts = np.asarray(block_masks.block_masks(
        jax.random.PRNGKey(1), jnp.arange(200), (14, 14),
        jnp.where(jnp.arange(200) % 2 == 0, 0.0, 40.0), min_block=16)).sum(1)
    assert (counts[::2] == 0).all()
    assert (counts[1::2] >= 16).all() and (counts[1::2] <= 40).all()


def test_an_image_mask_depends_on_its_index_not_on_its_batch():
    """What makes masks the same on any number of devices: the rows of images 4..7 drawn
    alone equal their rows in the batch of 0..7, and two images' masks differ."""
    draw = jax.jit(lambda ids: block_masks.block_masks(jax.random.PRNGKey(3), ids, (14, 14),
                                                       50.0, min_block=16))
    whole = np.asarray(draw(jnp.arange(8)))
    np.testing.assert_array_equal(np.asarray(draw(jnp.arange(4, 8))), whole[4:])
    assert len({row.tobytes() for row in whole}) == 8
