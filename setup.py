"""Packaging beyond setup.cfg: configs/ stays at the repository's top level, where users
look for it, and installs as the package ``jax_ssl.configs`` (``jax-ssl-train --config
simclr_fashion_mnist`` finds it in any install)."""
from setuptools import find_packages, setup

setup(packages=find_packages(include=["jax_ssl", "jax_ssl.*"]) + ["jax_ssl.configs"],
      package_dir={"jax_ssl.configs": "configs"},
      package_data={"jax_ssl.configs": ["README.md"]})
