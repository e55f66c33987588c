"""The built-in experiment configs (see akorn_jax.config_loader): `akorn-train --config=NAME[:ARG]`.

Shipped in the wheel as `akorn_jax.configs`; in a checkout this folder is the same package.
"""
