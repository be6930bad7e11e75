"""Input: sources, tf.data augmentations and the per-host pipeline (DESIGN.md §1)."""
