"""The data mesh and shard_over_data."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, parallel


def test_data_mesh_spans_all_devices():
    mesh = parallel.data_mesh()
    assert mesh.axis_names == (parallel.DATA_AXIS,)
    assert mesh.devices.size == jax.device_count() == 8
    assert parallel.data_mesh(jax.devices()[:2]).devices.size == 2


def test_batch_sharding_splits_the_leading_axis():
    mesh = parallel.data_mesh()
    x = jax.device_put(jnp.arange(32.0).reshape(16, 2), parallel.batch_sharding(mesh))
    assert [s.data.shape for s in x.addressable_shards] == [(2, 2)] * 8
    y = jax.device_put(jnp.ones(3), parallel.replicated_sharding(mesh))
    assert all(s.data.shape == (3,) for s in y.addressable_shards)


def test_check_batch_divisible_names_both_numbers():
    mesh = parallel.data_mesh()
    assert parallel.check_batch_divisible(64, mesh) == 8
    with pytest.raises(ValueError, match=r"12 is not divisible by the 8 devices"):
        parallel.check_batch_divisible(12, mesh)


def test_shard_over_data_per_device_view():
    mesh = parallel.data_mesh()

    def local(x):
        # each device sees its 2 rows and its own index
        return x.sum(axis=1) + 100 * jax.lax.axis_index(parallel.DATA_AXIS)

    out = jax.jit(parallel.shard_over_data(local, mesh, out_specs=P(parallel.DATA_AXIS)))(
        jnp.ones((16, 3)))
    np.testing.assert_array_equal(out, 3 + 100 * np.repeat(np.arange(8), 2))


def test_shard_over_data_runs_a_loss_as_in_the_docstring(rng):
    mesh = parallel.data_mesh()
    z1, z2 = rng.normal(size=(16, 4)), rng.normal(size=(16, 4))
    loss = jax.jit(parallel.shard_over_data(
        functools.partial(losses.info_nce, axis_name=parallel.DATA_AXIS), mesh))
    np.testing.assert_allclose(loss(z1, z2), losses.info_nce(z1, z2), rtol=1e-5)
