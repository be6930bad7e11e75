"""Eight simulated CPU devices for the multi-device tests; set before JAX is imported."""
import atexit
import os
import shutil
import tempfile

# A compilation cache for this session: tests that rebuild the same program (a resumed
# run, an evaluation of the model just trained, the processes of the multi-host test)
# load it instead of compiling it again; the suite spends most of its time compiling.
# pytest-xdist's workers inherit the controller's cache, so a program one worker compiled
# is loaded by the other; the process that made the folder removes it.
if "JAX_SSL_TEST_COMPILATION_CACHE" not in os.environ:
    os.environ["JAX_SSL_TEST_COMPILATION_CACHE"] = tempfile.mkdtemp(
        prefix="jax_ssl_test_compilation_cache_")
    atexit.register(shutil.rmtree, os.environ["JAX_SSL_TEST_COMPILATION_CACHE"],
                    ignore_errors=True)
os.environ["JAX_COMPILATION_CACHE_DIR"] = os.environ["JAX_SSL_TEST_COMPILATION_CACHE"]
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0.2"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
# The tests' programs are tiny and compiled once each: LLVM's optimisation passes cost
# more than they save (a quarter of an 8-device step test's time); values are unchanged
# (XLA:CPU does not allow fast-math reassociation at any level).
os.environ["XLA_FLAGS"] = (
    os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
    + ("" if "xla_backend_optimization_level" in os.environ.get("XLA_FLAGS", "")
       else " --xla_backend_optimization_level=0")).strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

NUM_DEVICES = 8


@pytest.fixture(scope="session", autouse=True)
def _eight_devices():
    assert jax.device_count() == NUM_DEVICES, (
        "tests need 8 CPU devices: XLA_FLAGS must be set before anything imports jax")


@pytest.fixture
def rng():
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def tfds_dir(tmp_path_factory):
    """A 50-image TFDS dataset 'tiny_images' on disk; image i is filled with i."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    data_dir = tmp_path_factory.mktemp("tfds")
    images = np.stack([np.full((6, 5, 3), i, np.uint8) for i in range(50)])
    features = tfds.features.FeaturesDict({
        "image": tfds.features.Image(shape=(None, None, 3)),
        "label": tfds.features.ClassLabel(names=["even", "odd"])})
    def split(n):
        return tf.data.Dataset.from_tensor_slices(
            {"image": images[:n], "label": np.arange(n) % 2})
    tfds.dataset_builders.store_as_tfds_dataset(
        name="tiny_images", version="1.0.0", features=features,
        split_datasets={"train": split(50), "test": split(10)}, data_dir=data_dir)
    return str(data_dir)
