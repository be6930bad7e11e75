"""The per-host input pipeline: source → augmented local batches → global ``jax.Array``s.

Each process reads ``1/process_count`` of the split, augments it with tf.data on its
CPUs and batches its share of the global batch; :func:`global_batches` assembles the
shares into arrays sharded over the ``data`` mesh axis with
``jax.make_array_from_process_local_data`` and keeps two batches in flight to devices.

For indexed sources the stream is defined globally: epoch e is a seeded permutation of
the whole split, global batch s holds positions s·G … s·G + G − 1 of the concatenated
epochs, process p reads rows p·L … p·L + L − 1 of it, and every example is augmented with
a stateless seed derived from ``(seed, global position)``. The global batches are
therefore the same for any number of processes and any tf.data parallelism, each
process reads a disjoint part of every epoch, and resuming at step s starts directly at
position s·G. TFDS sources are read per process (``tfds.split_for_jax_process``) and
resume by skipping undecoded records.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator

import jax
import numpy as np
import tensorflow as tf

from jax_ssl import parallel
from jax_ssl.data.sources import IndexedSource, TFDSSource, decode_image

AUTOTUNE = tf.data.AUTOTUNE
_FOREVER = 2**62


def _options() -> tf.data.Options:
    options = tf.data.Options()
    options.deterministic = True
    # One thread per map call: parallelism comes from augmenting many images at once.
    options.threading.max_intra_op_parallelism = 1
    return options


def _process(process_index, process_count):
    process_index = jax.process_index() if process_index is None else process_index
    process_count = jax.process_count() if process_count is None else process_count
    if not 0 <= process_index < process_count:
        raise ValueError(f"process_index {process_index} is not in [0, {process_count}).")
    return process_index, process_count


def host_indices(num_examples: int, process_index: int, process_count: int) -> np.ndarray:
    """The contiguous block of example indices that one process reads."""
    return np.array_split(np.arange(num_examples), process_count)[process_index]


def _fold_in(seed, data):
    return tf.random.experimental.stateless_fold_in(seed, tf.cast(data, tf.int64))


def _indexed_stream(num_examples: int, seed, global_batch: int, local_batch: int,
                    process_index: int, start_step: int):
    """(global position, example index) pairs of this process's rows, from ``start_step``."""
    permutation_seed = _fold_in(seed, 1)

    def position(k):  # k-th example this process reads → its global position
        step, row = k // local_batch, k % local_batch
        return step * global_batch + process_index * local_batch + row

    def example_index(g):
        epoch_seed = _fold_in(permutation_seed, g // num_examples)
        return tf.random.experimental.index_shuffle(g % num_examples, epoch_seed,
                                                    num_examples - 1)

    stream = tf.data.Dataset.range(start_step * local_batch, _FOREVER).map(position)
    return stream.map(lambda g: (g, example_index(g)))


def train_batches(source, recipe, *, global_batch_size: int, seed: int, start_step: int = 0,
                  process_index: int | None = None, process_count: int | None = None,
                  shuffle_buffer: int = 10_000, with_index: bool = False) -> tf.data.Dataset:
    """The endless stream of this process's local training batches.

    Args:
      source: from :func:`jax_ssl.data.sources.get_source`.
      recipe: from :func:`jax_ssl.data.recipes.make_recipe`.
      global_batch_size: examples per step over all processes; each yields its share.
      seed: the run's data seed; start_step: the step to resume at.
      process_index, process_count: default to JAX's (override to simulate hosts).
      shuffle_buffer: TFDS sources only (indexed sources permute whole epochs).
      with_index: also ``index`` int32, each example's row in the split, below
        ``source.num_indices`` (PIRL's memory bank is addressed by it).
    Returns: tf.data of dicts: the recipe's views, each [local batch, ...], and ``label``.
      With ``recipe=None`` (an indexed source augmented on the device, see
      :mod:`jax_ssl.data.device_augment`): ``image`` uint8 [local batch, H, W, 3] as
      stored, ``position`` int32, each example's place in the run's stream of examples
      (what its augmentation is seeded with), and ``label``.
    """
    process_index, process_count = _process(process_index, process_count)
    local_batch = parallel.check_divides(global_batch_size, process_count, "processes")
    if isinstance(source, IndexedSource):
        if source.num_examples < global_batch_size:
            raise ValueError(f"{source.name} {source.split} has {source.num_examples} examples, "
                             f"fewer than the global batch of {global_batch_size}.")
        labels = tf.constant(source.labels, tf.int32)
        run_seed = tf.constant([seed, 0], tf.int64)
        augment_seed = _fold_in(run_seed, 2)
        stream = _indexed_stream(source.num_examples, run_seed, global_batch_size, local_batch,
                                 process_index, start_step)

        def example(position, index):
            if recipe is None:
                views = {"image": source.load(index),
                         "position": tf.cast(position, tf.int32)}  # < 2^31 examples a run
            else:
                views = recipe(source.load(index), _fold_in(augment_seed, position))
            if with_index:
                views["index"] = tf.cast(index, tf.int32)
            return {**views, "label": tf.gather(labels, index)}
    elif recipe is None:
        raise ValueError(f"{source.name} is read from files: augment it with a recipe in "
                         "tf.data (recipe=None is for in-memory sources).")
    elif isinstance(source, TFDSSource):
        augment_seed = tf.constant([seed, process_index], tf.int64)
        start = start_step * local_batch
        records = source.records(process_index, process_count, shuffle_seed=seed,
                                 with_index=with_index)
        stream = (records.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
                  .repeat().skip(start).enumerate(start))

        def example(position, record):
            views = recipe(decode_image(record["image"]), _fold_in(augment_seed, position))
            if with_index:
                views["index"] = tf.cast(record["index"], tf.int32)
            return {**views, "label": tf.cast(record["label"], tf.int32)}
    else:
        raise TypeError(f"not a data source: {source!r}")

    batches = (stream.map(_traced_as_written(example), num_parallel_calls=AUTOTUNE)
               .ignore_errors(log_warning=True)  # a file that went bad after the source's check
               .batch(local_batch, drop_remainder=True)
               .prefetch(AUTOTUNE))
    return batches.with_options(_options())


def _traced_as_written(fn):
    """``fn`` for ``Dataset.map`` without AutoGraph's rewriting of it and its callees.

    The recipes branch with ``tf.cond``/``tf.where`` only, so the rewrite changes nothing
    but costs 5 s of tracing per pipeline for multi-crop (1.3 s without).
    """
    return tf.autograph.experimental.do_not_convert(fn)


def eval_batches(source, recipe, *, global_batch_size: int, process_index: int | None = None,
                 process_count: int | None = None) -> tf.data.Dataset:
    """One pass over this process's part of the split, in order, padded to whole batches.

    Every process yields the same number of batches (the largest part's), so the global
    arrays line up; padding repeats the part's first example with ``mask`` False.
    Returns: tf.data of dicts: the recipe's outputs, ``label``, ``mask`` [local batch].
    """
    process_index, process_count = _process(process_index, process_count)
    local_batch = parallel.check_divides(global_batch_size, process_count, "processes")
    if isinstance(source, IndexedSource):
        labels = tf.constant(source.labels, tf.int32)
        sizes = [len(host_indices(source.num_examples, p, process_count))
                 for p in range(process_count)]
        examples = tf.data.Dataset.from_tensor_slices(
            host_indices(source.num_examples, process_index, process_count)).map(
            lambda i: (source.load(i), tf.gather(labels, i)))
    elif isinstance(source, TFDSSource):
        sizes = [source.num_examples_for(p, process_count) for p in range(process_count)]
        examples = source.records(process_index, process_count, shuffle_seed=None).map(
            lambda r: (decode_image(r["image"]), tf.cast(r["label"], tf.int32)))
    else:
        raise TypeError(f"not a data source: {source!r}")
    total = -(-max(sizes) // local_batch) * local_batch
    padding = examples.take(1).repeat(total - sizes[process_index])
    no_seed = tf.zeros([2], tf.int64)

    def example(image, label, valid):
        return {**recipe(image, no_seed), "label": label, "mask": valid}

    batches = (examples.map(lambda image, label: (image, label, True))
               .concatenate(padding.map(lambda image, label: (image, label, False)))
               .map(_traced_as_written(example), num_parallel_calls=AUTOTUNE)
               .batch(local_batch, drop_remainder=True)
               .prefetch(AUTOTUNE))
    return batches.with_options(_options())


def global_batches(local_batches: Iterable, mesh, *, prefetch: int = 2) -> Iterator[dict]:
    """Local NumPy/TF batches → dicts of global ``jax.Array``s sharded over ``data``.

    A background thread converts and transfers up to ``prefetch`` batches ahead, so the
    host's input work overlaps the devices' step.
    """
    sharding = parallel.batch_sharding(mesh)

    def to_global(batch):
        batch = jax.tree.map(np.asarray, batch)
        local_size = jax.tree.leaves(batch)[0].shape[0]
        parallel.check_batch_divisible(local_size * jax.process_count(), mesh)
        return jax.tree.map(
            lambda x: jax.make_array_from_process_local_data(sharding, x), batch)

    if isinstance(local_batches, tf.data.Dataset):
        local_batches = local_batches.as_numpy_iterator()
    return _prefetch(map(to_global, local_batches), prefetch)


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def _prefetch(iterator: Iterator, size: int) -> Iterator:
    """Runs ``iterator`` in a daemon thread, ``size`` items ahead; re-raises its errors."""
    items: queue.Queue = queue.Queue(maxsize=size)
    done = object()

    def produce():
        try:
            for item in iterator:
                items.put(item)
        except BaseException as e:  # handed to the consumer, which re-raises it
            items.put(_Failure(e))
        items.put(done)

    threading.Thread(target=produce, daemon=True, name="jax_ssl-prefetch").start()
    while (item := items.get()) is not done:
        if isinstance(item, _Failure):
            raise item.error
        yield item
