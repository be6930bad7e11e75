"""jax-ssl: self-supervised visual representation learning in JAX/Flax."""

__version__ = "0.1.0"
