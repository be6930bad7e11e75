"""Input: sources, tf.data augmentations and the per-host pipeline (DESIGN.md §1)."""
import tensorflow as tf

# tf.data works on the host CPUs; a TensorFlow build with GPU support must not claim the
# accelerators' memory that JAX needs.
tf.config.set_visible_devices([], "GPU")
