"""Rotation, jigsaw and relative-position pretext tasks."""
import itertools

import numpy as np
import pytest

from jax_ssl import losses


def test_max_hamming_permutations_are_unique_deterministic_and_far_apart():
    perms = losses.max_hamming_permutations(100)
    assert perms.shape == (100, 9) and perms.dtype == np.int32
    assert len({tuple(p) for p in perms}) == 100
    assert all(sorted(p) == list(range(9)) for p in perms)
    np.testing.assert_array_equal(perms, losses.max_hamming_permutations(100))
    distances = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    np.fill_diagonal(distances, 9)
    # Random pairs of 9-permutations differ in ~8 places on average; the maximal-average
    # set is more spread: mean pairwise distance above that of random permutations.
    random = np.array([np.random.default_rng(s).permutation(9) for s in range(100)])
    random_distances = (random[:, None] != random[None, :]).sum(-1)
    assert distances[~np.eye(100, dtype=bool)].mean() > random_distances[
        ~np.eye(100, dtype=bool)].mean()
    assert distances.min() >= 2


def test_max_hamming_greedy_choice_on_four_tiles():
    # Algorithm 1 by brute force on 4 tiles: after the first, each next permutation is the
    # unused one with the largest summed Hamming distance to those chosen (first on ties).
    perms = losses.max_hamming_permutations(6, num_tiles=4, seed=3)
    candidates = np.array(list(itertools.permutations(range(4))))
    chosen = [int(np.flatnonzero((candidates == perms[0]).all(1))[0])]
    for _ in range(5):
        score = [-1 if i in chosen else sum((candidates[i] != candidates[j]).sum() for j in chosen)
                 for i in range(len(candidates))]
        chosen.append(int(np.argmax(score)))
    np.testing.assert_array_equal(perms, candidates[chosen])
    with pytest.raises(ValueError, match="num_permutations"):
        losses.max_hamming_permutations(25, num_tiles=4)


def test_jigsaw_tiles_follow_the_permutation(rng):
    images = rng.normal(size=(2, 6, 9, 3)).astype(np.float32)
    perms = losses.max_hamming_permutations(10)
    labels = np.array([3, 7])
    tiles = np.asarray(losses.jigsaw_tiles(images, labels, perms))
    assert tiles.shape == (2, 9, 2, 3, 3)
    for n in range(2):
        for i, source in enumerate(perms[labels[n]]):
            r, c = divmod(int(source), 3)
            np.testing.assert_array_equal(tiles[n, i], images[n, 2 * r:2 * r + 2, 3 * c:3 * c + 3])
    with pytest.raises(ValueError, match="grid"):
        losses.jigsaw_tiles(images[:, :5], labels, perms)


def test_rotation_batch(rng):
    images = rng.normal(size=(2, 4, 4, 1)).astype(np.float32)
    rotated, labels = losses.rotation_batch(images)
    np.testing.assert_array_equal(labels, [0, 0, 1, 1, 2, 2, 3, 3])
    for k in range(4):
        np.testing.assert_array_equal(rotated[2 * k:2 * k + 2], np.rot90(images, k, axes=(1, 2)))
    with pytest.raises(ValueError, match="square"):
        losses.rotation_batch(images[:, :3])


@pytest.mark.parametrize("fn,classes", [(losses.rotation_loss, 4), (losses.jigsaw_loss, 30),
                                        (losses.relative_position_loss, 8)])
def test_classification_losses_hand_case(fn, classes):
    # Uniform logits: cross-entropy log C; a logit of 100 on the label: ~0.
    labels = np.array([0, classes - 1])
    np.testing.assert_allclose(fn(np.zeros((2, classes)), labels), np.log(classes), rtol=1e-6)
    confident = np.zeros((2, classes))
    confident[np.arange(2), labels] = 100.0
    assert float(fn(confident, labels)) < 1e-6


def test_classification_losses_check_their_shapes():
    with pytest.raises(ValueError, match="4 classes"):
        losses.rotation_loss(np.zeros((2, 5)), np.zeros(2, int))
    with pytest.raises(ValueError, match="8 classes"):
        losses.relative_position_loss(np.zeros((2, 9)), np.zeros(2, int))
    with pytest.raises(ValueError, match="permutation_index"):
        losses.jigsaw_loss(np.zeros((2, 9)), np.zeros(3, int))
    assert losses.RELATIVE_POSITION_OFFSETS[0] == (-1, -1) and len(
        set(losses.RELATIVE_POSITION_OFFSETS)) == 8
