"""Test configuration: 8 virtual CPU devices so sharding is exercised without accelerators."""

import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests must never reach the network (tfds would otherwise try to download catalog datasets).
os.environ.setdefault("TFDS_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "runs", "tfds_test_unused"))
os.environ.setdefault("NO_GCE_CHECK", "true")
# Tests compile fresh: no persistent compilation cache (the drivers turn one on by default).
os.environ.setdefault("AKORN_JAX_CACHE_DIR", "off")
