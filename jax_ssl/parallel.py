"""The `data` mesh and running per-device code on it (DESIGN.md §3).

One mesh axis, ``data``, spans every device of every host. Parameters are replicated,
batches are split on their leading axis, and code that needs cross-device reductions
runs per device under ``jax.shard_map`` with ``axis_name=DATA_AXIS``.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

DATA_AXIS = "data"
BATCH_SPEC = P(DATA_AXIS)  # leading axis split over the devices
REPLICATED_SPEC = P()


def data_mesh(devices: Sequence[jax.Device] | None = None) -> Mesh:
    """A 1-D mesh named ``data`` over ``devices`` (default: all devices of all processes)."""
    devices = jax.devices() if devices is None else list(devices)
    if not devices:
        raise ValueError("data_mesh needs at least one device.")
    # Auto axes: shard_map and jit reshard their inputs to the requested specs.
    return Mesh(np.asarray(devices), (DATA_AXIS,), axis_types=(AxisType.Auto,))


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading axis split over ``data``; the rest of each array whole on its device."""
    return NamedSharding(mesh, BATCH_SPEC)


def replicated_sharding(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, REPLICATED_SPEC)


def initialize_distributed(config=None) -> None:
    """Joins a multi-process JAX run when ``config.enabled`` (a config's ``distributed``).

    On Cloud TPU pods and SLURM, ``jax.distributed.initialize()`` finds its peers by
    itself; elsewhere set ``coordinator_address``, ``num_processes`` and ``process_id``.
    ``cpu_collectives`` ('gloo') lets CPU-only processes reduce across each other.
    """
    if not config or not config.get("enabled"):
        return
    if config.get("cpu_collectives"):
        jax.config.update("jax_cpu_collectives_implementation", config.cpu_collectives)
    kwargs = {}
    if config.get("coordinator_address"):
        kwargs["coordinator_address"] = config.coordinator_address
    if config.get("num_processes", 0) > 0:
        kwargs["num_processes"] = config.num_processes
    if config.get("process_id", -1) >= 0:
        kwargs["process_id"] = config.process_id
    jax.distributed.initialize(**kwargs)


def check_divides(global_batch_size: int, parts: int, what: str) -> int:
    """``global_batch_size // parts``, or a ValueError naming both numbers and ``what``."""
    if global_batch_size <= 0 or global_batch_size % parts:
        raise ValueError(
            f"global batch size {global_batch_size} is not divisible by the {parts} {what}; "
            f"choose a multiple of {parts}.")
    return global_batch_size // parts


def check_batch_divisible(global_batch_size: int, mesh: Mesh) -> int:
    """Returns the per-device batch, or raises ValueError naming both numbers."""
    check_divides(global_batch_size, jax.process_count(), "processes")
    return check_divides(global_batch_size, mesh.devices.size,
                         f"devices of the '{DATA_AXIS}' mesh")


def shard_over_data(fn: Callable, mesh: Mesh, *, in_specs=BATCH_SPEC,
                    out_specs=REPLICATED_SPEC):
    """Runs ``fn`` once per device of ``mesh`` under ``jax.shard_map``.

    ``fn`` sees its device's shard of each argument whose spec is ``P('data')`` and may
    reduce over ``DATA_AXIS`` (every loss in ``jax_ssl.losses`` takes it as
    ``axis_name``). The default specs split every argument's leading axis and return a
    replicated result, e.g. a loss::

        loss = jax.jit(shard_over_data(
            functools.partial(losses.info_nce, axis_name=DATA_AXIS), mesh))(z1, z2)

    Gradients taken outside (``jax.grad`` of the returned function) are those of the
    global-batch computation. An argument whose split axis the devices do not divide is
    the input pipeline's ValueError, raised before ``fn`` is traced.
    """
    per_device = jax.shard_map(fn, mesh=mesh, in_specs=in_specs, out_specs=out_specs)

    def run(*args):
        specs = (in_specs,) * len(args) if isinstance(in_specs, P) else in_specs
        for spec, arg in zip(specs, args, strict=False):  # shard_map reports a mismatch
            jax.tree.map(lambda s, a: _check_split_axes(s, a, mesh), spec, arg,
                         is_leaf=lambda s: isinstance(s, P))
        return per_device(*args)

    return run


def _check_split_axes(spec: P, arrays, mesh: Mesh) -> None:
    """Every axis of ``arrays`` that ``spec`` splits over ``DATA_AXIS`` divisible by the
    devices (shard_map's own error is a paragraph about mesh axes)."""
    split = [axis for axis, names in enumerate(spec)
             if DATA_AXIS in (names if isinstance(names, tuple) else (names,))]
    for shape in map(np.shape, jax.tree.leaves(arrays)):
        for axis in split:
            if axis < len(shape):  # a spec longer than the array is shard_map's to report
                check_batch_divisible(shape[axis], mesh)
