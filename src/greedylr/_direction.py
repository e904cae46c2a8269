"""Which way a metric improves, read from its name where nobody said: the one rule the
comparison harness (``greedylr compare``) and the integrations guess a direction by."""

from __future__ import annotations

import re

__all__ = ["LOWER_IS_BETTER", "direction_from_name"]

#: The words of a metric's name that make smaller values better (``val_loss``,
#: ``top1_err``, ``wer``, ``eval_perplexity``), besides any word ending in ``loss``.
LOWER_IS_BETTER = frozenset({
    "loss", "error", "errors", "err", "wer", "cer", "ter", "eer", "fid", "kid",
    "perplexity", "ppl", "mse", "mae", "rmse", "mape", "smape", "nll", "bpc", "bpb", "bpd",
    "ece", "kl", "kld", "regret", "distance",
})


def direction_from_name(metric: str) -> bool:
    """Whether a larger ``metric`` is better, read from its name: smaller is better where
    a word of the name (split at ``_``, ``-``, ``.``, digits and camelCase) is a loss or an
    error (``loss`` or a word ending in it, ``error``/``err``, ``wer``, ``cer``, ``fid``,
    ``perplexity``/``ppl``, ``mse``/``mae``/``rmse``, ``nll``, ``bpc``, ...); larger
    otherwise (``accuracy``, ``f1``, ``bleu``, ``auc``).

    A guess, used only where the code does not say (``train.higher_is_better`` in
    ``greedylr compare``, where the harness warns of it once and the report says it; a
    metric other than ``metric_for_best_model`` fed to GreedyLR by the HF Trainer
    integration, which warns of it; the monitored metric of the Lightning callback, which
    warns where a GreedyLR's ``eval_mode`` reads it the other way).

    Examples:
        >>> [direction_from_name(m) for m in ("top1_err", "valLoss", "WER", "accuracy")]
        [False, False, False, True]
    """
    words = re.findall(r"[a-z]+", re.sub(r"([a-z])([A-Z])", r"\1_\2", metric).lower())
    return not any(w in LOWER_IS_BETTER or w.endswith("loss") for w in words)
