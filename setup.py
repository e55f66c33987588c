"""Which packages the wheel holds; every other setting is in setup.cfg.

The repository's top-level configs/ and experiments/ folders (where people read and edit them) ship
inside the package as `akorn_jax.configs` and `akorn_jax.experiments`, so the built-in configs and
the console commands work the same from a wheel as from a checkout. Data folders under akorn_jax/
(assets/) are namespace packages, which is how setuptools wants package data declared.
"""

import setuptools

setuptools.setup(
    packages=setuptools.find_namespace_packages(
        include=["akorn_jax", "akorn_jax.*"], exclude=["*.__pycache__"])
    + ["akorn_jax.configs", "akorn_jax.experiments"],
    package_dir={"akorn_jax.configs": "configs", "akorn_jax.experiments": "experiments"},
)
