"""The data mesh and shard_over_data."""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

from jax_ssl import losses, parallel
from jax_ssl.data import pipeline


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


def _pipeline_message(global_batch_size):
    """What the input pipeline says of a global batch the 8 devices do not divide."""
    batches = pipeline.global_batches(iter([{"x": np.zeros((global_batch_size, 1))}]),
                                      parallel.data_mesh())
    with pytest.raises(ValueError) as error:
        next(batches)
    return str(error.value)


def test_shard_over_data_refuses_an_indivisible_batch_as_the_pipeline_does():
    """12 rows on 8 devices: the pipeline's one-line message (not shard_map's paragraph),
    before the loss is traced."""
    traced = []

    def loss(z1, z2):
        traced.append(z1.shape)
        return losses.info_nce(z1, z2, axis_name=parallel.DATA_AXIS)

    global_loss = jax.jit(parallel.shard_over_data(loss, parallel.data_mesh()))
    z = np.ones((12, 4), np.float32)
    with pytest.raises(ValueError) as error:
        global_loss(z, z)
    assert str(error.value) == _pipeline_message(12)
    assert "\n" not in str(error.value) and "12" in str(error.value) and not traced


def test_shard_over_data_checks_the_axis_each_spec_splits():
    """Per-argument specs: the batch on axis 1 is checked (8 → fine, 12 → the error);
    a replicated argument of any length is not."""
    run = parallel.shard_over_data(
        lambda views, scale: jax.lax.psum(views.sum(), parallel.DATA_AXIS) * scale.sum(),
        parallel.data_mesh(), in_specs=(P(None, parallel.DATA_AXIS), P()))
    np.testing.assert_allclose(run(np.ones((2, 8)), np.ones(3)), 48.0)
    with pytest.raises(ValueError, match=r"^global batch size 12 is not divisible by the 8 "):
        run(np.ones((2, 12)), np.ones(3))
