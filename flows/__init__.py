"""Prefect flows over the adop library. Importing this package first sets Prefect's environment defaults."""

from flows._env import configure_prefect_environment

configure_prefect_environment()
