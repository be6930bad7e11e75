"""Scalars as JSON lines and TensorBoard events in a directory, written by process 0 only.

``metrics.jsonl`` and a ``tensorboard/`` event directory (the events are what
``tf.summary.scalar`` writes, without needing the tensorboard package). The trainer
writes its workdir's, the evaluation job its ``eval/`` folder's: it lives outside
``train.py`` because evaluation must not import the trainer (DESIGN.md §2).
"""
from __future__ import annotations

import json
import os

import jax


class MetricWriter:
    """``write(step, {name: float})`` appends to ``DIRECTORY/metrics.jsonl`` and to the
    TensorBoard events in ``DIRECTORY/tensorboard``."""

    def __init__(self, directory: str):
        self.active = jax.process_index() == 0
        if self.active:
            import tensorflow as tf

            # tf.io.gfile, so a bucket (gs://...) works as well as a local directory
            tf.io.gfile.makedirs(directory)
            self._json = tf.io.gfile.GFile(os.path.join(directory, "metrics.jsonl"), "a")
            self._tb = tf.summary.create_file_writer(os.path.join(directory, "tensorboard"))

    def write(self, step: int, metrics: dict):
        if not self.active:
            return
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._json.write(json.dumps({"step": step, **metrics}) + "\n")
        self._json.flush()
        scalar = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"))
        with self._tb.as_default(step=step):
            for name, value in metrics.items():
                tf.summary.write(name, tf.constant(value, tf.float32), metadata=scalar)
        self._tb.flush()

    def close(self):
        if self.active:
            self._json.close()
            self._tb.close()
