"""Every loss on 8 devices (shard_map and pmap) equals the loss on the whole batch on one.

Values and gradients with respect to the inputs must match (rtol 1e-5), and so must the
gradient of a replicated parameter taken per device the way a training step takes it.
"""
import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import NUM_DEVICES
from jax.sharding import PartitionSpec as P
from loss_cases import CASES

from jax_ssl import parallel

RTOL, ATOL = 1e-5, 1e-6


def spec(axis):
    return P() if axis is None else P(*([None] * axis), parallel.DATA_AXIS)


def single_device(case, args):
    return functools.partial(case.fn, axis_name=None)


def on_shard_map(case):
    """A global-array function running the case's loss per device under shard_map."""
    return parallel.shard_over_data(
        functools.partial(case.fn, axis_name=parallel.DATA_AXIS), parallel.data_mesh(),
        in_specs=tuple(spec(a) for a in case.batch_axes), out_specs=spec(case.out_batch_axis))


def split(x, axis):
    """[.., N, ..] -> [devices, .., N/devices, ..]; replicated inputs are broadcast."""
    if axis is None:
        return jnp.broadcast_to(x, (NUM_DEVICES,) + jnp.shape(x))
    return jnp.stack(jnp.split(x, NUM_DEVICES, axis=axis))


def on_pmap(case):
    """A global-array function: pmap over per-device pieces, outputs stitched back."""
    per_device = jax.pmap(functools.partial(case.fn, axis_name="i"), axis_name="i")

    def per_device_outputs(*args):
        return per_device(*[split(x, a) for x, a in zip(args, case.batch_axes, strict=True)])

    def run(*args):
        out = per_device_outputs(*args)
        if case.out_batch_axis is None:
            return jnp.mean(out, axis=0)  # the mean of equal copies: its gradient is exact
        return jnp.concatenate(list(out), axis=case.out_batch_axis)

    run.per_device_outputs = per_device_outputs
    return run


def assert_close(actual, expected, what):
    np.testing.assert_allclose(np.asarray(actual), np.asarray(expected), rtol=RTOL, atol=ATOL,
                               err_msg=what)


@pytest.mark.parametrize("distribute", [on_shard_map, on_pmap], ids=["shard_map", "pmap"])
@pytest.mark.parametrize("case", CASES, ids=repr)
def test_values_and_input_gradients_equal_single_device(case, distribute, rng):
    args = [jnp.asarray(x) for x in case.make(rng)]
    reference = single_device(case, args)
    distributed = distribute(case)
    assert_close(jax.jit(distributed)(*args), reference(*args), f"{case.name} value")
    if hasattr(distributed, "per_device_outputs") and case.out_batch_axis is None:
        outputs = distributed.per_device_outputs(*args)
        for device_output in outputs[1:]:
            assert_close(device_output, outputs[0], f"{case.name}: devices disagree")
    if case.grad_argnums:
        expected = jax.grad(reference, argnums=case.grad_argnums)(*args)
        actual = jax.jit(jax.grad(distributed, argnums=case.grad_argnums))(*args)
        for i, g_actual, g_expected in zip(case.grad_argnums, actual, expected, strict=True):
            assert_close(g_actual, g_expected, f"{case.name} gradient of input {i}")
            if i == case.grad_argnums[0]:
                assert np.any(np.asarray(g_expected)), "the first input must get a gradient"


def with_parameter(case):
    """The case's loss of ``w * x`` for its first differentiable input x and a parameter w."""
    i = case.grad_argnums[0]

    def fn(w, *args, axis_name):
        args = list(args)
        args[i] = args[i] * w
        return case.fn(*args, axis_name=axis_name)

    return fn


TRAINABLE = [c for c in CASES if c.grad_argnums and c.out_batch_axis is None]


@pytest.mark.parametrize("case", TRAINABLE, ids=repr)
def test_parameter_gradient_as_a_training_step_takes_it(case, rng):
    """Per-device jax.grad of a replicated parameter: exact under shard_map as it is;
    exact under pmap after the usual ``lax.pmean`` of the gradients."""
    args = [jnp.asarray(x) for x in case.make(rng)]
    fn = with_parameter(case)
    w = jnp.asarray(1.0 + 0.1 * rng.normal(size=args[case.grad_argnums[0]].shape[-1]),
                    jnp.float32)
    expected = jax.grad(functools.partial(fn, axis_name=None))(w, *args)

    def shard_step(w, *args):
        return jax.grad(functools.partial(fn, axis_name=parallel.DATA_AXIS))(w, *args)

    shard_grad = parallel.shard_over_data(
        shard_step, parallel.data_mesh(),
        in_specs=(P(),) + tuple(spec(a) for a in case.batch_axes), out_specs=P())
    assert_close(jax.jit(shard_grad)(w, *args), expected, f"{case.name} shard_map param grad")

    def pmap_step(w, *args):
        return jax.lax.pmean(jax.grad(functools.partial(fn, axis_name="i"))(w, *args), "i")

    pieces = [split(x, a) for x, a in zip(args, case.batch_axes, strict=True)]
    pmap_grad = jax.pmap(pmap_step, axis_name="i", in_axes=(None,) + (0,) * len(args))(w, *pieces)
    assert_close(pmap_grad[0], expected, f"{case.name} pmap param grad")
