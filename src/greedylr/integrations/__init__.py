"""Adapters to host frameworks, one module per framework.

Each module imports its framework at import time, so import the one you use; importing
:mod:`greedylr` or this package imports none of them::

    from greedylr.integrations.optax import greedy_lr   # needs jax and optax
"""
