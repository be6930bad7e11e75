"""Properties every loss must have: batch-order invariance, float32 compute, jit-ability."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from loss_cases import CASES


def permute_batch(case, args, rng):
    """Reorders every batched input with one permutation per batch length."""
    perms = {}
    out = []
    for i, (x, axis) in enumerate(zip(args, case.batch_axes, strict=True)):
        if axis is None or i in case.row_inputs:
            out.append(x)
            continue
        n = x.shape[axis]
        perm = perms.setdefault(n, rng.permutation(n))
        out.append(np.take(x, perm, axis=axis))
    return out, perms


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_batch_order_does_not_matter(case, rng):
    args = case.make(rng)
    fn = functools.partial(case.fn, axis_name=None)
    permuted, perms = permute_batch(case, args, rng)
    expected = np.asarray(fn(*args))
    if case.out_batch_axis is not None and not case.out_rows:  # samples follow their order
        expected = np.take(expected, perms[expected.shape[case.out_batch_axis]],
                           axis=case.out_batch_axis)
    np.testing.assert_allclose(fn(*permuted), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=repr)
def test_bfloat16_inputs_compute_in_float32(case, rng):
    args = case.make(rng)
    low = [x.astype(jnp.bfloat16) if np.issubdtype(np.asarray(x).dtype, np.floating) else x
           for x in args]
    same_values = [np.asarray(x, np.float32) if x.dtype == jnp.bfloat16 else x for x in low]
    fn = jax.jit(functools.partial(case.fn, axis_name=None))
    out = fn(*low)
    assert out.dtype == jnp.float32
    # Equal to the float32 computation on the same (rounded) values: nothing ran in bf16 ...
    np.testing.assert_allclose(out, fn(*same_values), rtol=1e-5, atol=1e-6)
    # ... and close to the full-precision result.
    np.testing.assert_allclose(out, fn(*args), rtol=0.05, atol=0.05)
