"""``python -m jax_ssl.analysis TOOL --workdir W`` / ``jax-ssl-analyze`` (flags: jax_ssl.cli)."""
from jax_ssl import cli

if __name__ == "__main__":
    cli.analyze()
