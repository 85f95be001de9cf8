"""Prefect flows over the adop library: the only part of adop that imports Prefect.

Nothing else in the package imports ``adop.flows`` (``adop run`` is the one command that starts a flow). Importing this
package first sets Prefect's environment defaults (``_env``).
"""

from adop.flows._env import configure_prefect_environment

configure_prefect_environment()
