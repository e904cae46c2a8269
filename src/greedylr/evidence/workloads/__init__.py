"""Built-in workloads: real training runs on data that is already on the machine.

A workload is a training function ``train(trial)`` (see :mod:`greedylr.studies.trial`)
plus the facts a study needs to run it fairly: its default learning rate, optimizer,
warmup and length, and its held-out metric. Every schedule of a study gets the same
values; only the schedule changes.

The modules listed in ``_MODULES`` are imported on first use (``get`` or ``names``),
each registering its workloads with :func:`register`. To add a workload, write a module
that calls ``register(Workload(...))`` at import time and add its name to ``_MODULES``
(one line). Keep heavy imports (transformers, datasets) inside the training function,
so that listing the workloads stays fast. The harness finds this registry by its module
name (:data:`greedylr.studies.targets.BUILTIN_WORKLOADS`) and never imports it otherwise.

Examples:
    >>> from greedylr.evidence import workloads
    >>> w = workloads.get("digits_mlp")
    >>> w.metric, w.higher_is_better
    ('accuracy', True)
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Workload", "all_workloads", "get", "names", "register"]

#: Modules (relative to this package, or absolute) that define workloads.
_MODULES: list[str] = [
    ".digits_mlp",
    ".digits_cnn",
    ".mnist_resnet",
    ".mnist_vit",
    ".tabular",
    ".stdlib_tagger",
    ".stdlib_char_transformer",
    ".stdlib_lstm_lm",
    ".docstring_seq2seq",
    ".photo_fourier_mlp",
    ".unicode_names",
    ".digits_autoencoder",
    ".mnist_softmax",
    ".terrain_mlp",
    ".mri_denoiser",
    ".membrane_forecast",
    ".hopper_colorizer",
    ".pydoc_topic_transformer",
    ".mnist_row_gru",
    ".font_glyph_mixer",
    ".topobathy_superres",
    ".chess_wide_deep",
    ".eeg_state_space",
    ".penguin_flow",
    ".graph_atlas_gin",
    ".titanic_ft_transformer",
    ".stock_volume_nbeats",
    ".cpu_kan",
    ".boston_moe",
    ".stocks_set_attention",
    ".lesmis_graph_autoencoder",
    ".xkcd_color_fasttext",
    ".font_kerning_fm",
    ".builtin_names_fasttext",
    ".monaco_js_gated_cnn",
    ".codec_table_neumf",
    ".time_zone_rbf",
    ".minilm_spelling_qrnn",
    ".html_entity_indrnn",
    ".sympy_docstring_nplm",
    ".locale_alias_elman",
    ".emoji_name_tcn",
    ".nccs_highway",
    ".torch_header_linear_attention",
    ".stable_quantile_siren",
    ".lightning_changelog_perceiver",
    ".aten_schema_rwkv",
    ".sympy_printer_pointer",
    ".stdlib_import_gat",
    ".bessel_deeponet",
    ".decimal_test_mamba",
    ".mime_type_capsule",
    ".ufunc_film",
    ".transformers_docstring_dual_encoder",
    ".complex_log1p_network",
    ".mnist_ddpm",
    ".networkx_source_mlm",
    ".font_word_crnn",
    ".mnist_vae",
    ".minilm_finetune",
    ".llama_pretrain",
]


@dataclass(frozen=True)
class Workload:
    """One registered workload.

    Args:
        name: registry key, used in trial specs and result files.
        train: the training function ``train(trial) -> None``.
        task: the paper's task type: ``classification``, ``regression``,
            ``sequence_labelling``, ``seq2seq``, ``language_modelling``.
        family: the architecture (``mlp``, ``cnn``, ``resnet``, ``vit``, ``lstm``, ...).
        data: where the data comes from, in a few words.
        lr: default initial (peak) learning rate for ``optimizer``.
        steps: default number of optimizer steps in the full study.
        optimizer: default optimizer name (``adamw``, ``adafactor``, ``adagrad``, ``sgd``,
            ``nadam``, ``rmsprop``, ``adamax``, ``radam``, ``adadelta``, ``asgd``, ``adam``,
            ``sparse_adam``, ``muon``).
        warmup: default warmup steps for the schedules that take one (0: the recipe has
            none, as in Hugging Face's defaults).
        eval_every: steps between held-out evaluations (0: only at the end).
        metric: the held-out metric's name as passed to ``trial.report``.
        higher_is_better: direction of ``metric``.
        quick_steps: a shorter length for the quick suite (still learns visibly).
        lrs: tuned-ish initial LRs for other optimizers (``{"sgd": 0.05}``); an
            optimizer not listed here falls back to ``lr``.
    """

    name: str
    train: Callable[[Any], None]
    task: str
    family: str
    data: str
    lr: float
    steps: int
    optimizer: str = "adamw"
    warmup: int = 0
    eval_every: int = 0
    metric: str = "accuracy"
    higher_is_better: bool = True
    quick_steps: int | None = None
    lrs: tuple[tuple[str, float], ...] = ()

    def lr_for(self, optimizer: str | None = None) -> float:
        """The default initial LR for ``optimizer`` (this workload's own by default)."""
        if optimizer is None or optimizer == self.optimizer:
            return self.lr
        return dict(self.lrs).get(optimizer, self.lr)


_REGISTRY: dict[str, Workload] = {}
_loaded = False
_lock = threading.Lock()


def register(workload: Workload) -> Workload:
    """Add ``workload`` to the registry; a second workload with the same name is an error."""
    existing = _REGISTRY.get(workload.name)
    if existing is not None and existing.train is not workload.train:
        raise ValueError(f"a workload named {workload.name!r} is already registered")
    _REGISTRY[workload.name] = workload
    return workload


def _load() -> None:
    global _loaded
    if _loaded:
        return
    with _lock:
        if not _loaded:
            for module in _MODULES:
                importlib.import_module(module, __name__)
            _loaded = True


def get(name: str) -> Workload:
    """The workload registered as ``name``.

    Raises:
        KeyError: with the registered names, when there is none by that name.
    """
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"no workload named {name!r}; registered: {', '.join(names())}") from None


def names() -> list[str]:
    """Every registered workload's name, sorted."""
    _load()
    return sorted(_REGISTRY)


def all_workloads() -> list[Workload]:
    """Every registered workload, sorted by name."""
    return [_REGISTRY[n] for n in names()]
