"""The config files, installed as ``jax_ssl.configs`` (see README.md in this folder)."""
