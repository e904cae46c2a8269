"""Which way a metric improves, read from its name where nobody said: the one rule the
comparison harness (``greedylr compare``) and the integrations guess a direction by."""

from __future__ import annotations

import re

__all__ = ["LOWER_IS_BETTER", "LOWER_IS_BETTER_PAIRS", "direction_from_name"]

#: The words of a metric's name that make smaller values better (``val_loss``,
#: ``top1_err``, ``wer``, ``eval_perplexity``, ``val_l1``), besides any word ending in
#: ``loss`` and the pairs in :data:`LOWER_IS_BETTER_PAIRS`.
LOWER_IS_BETTER = frozenset({
    "loss", "error", "errors", "err", "wer", "cer", "ter", "eer", "fid", "kid",
    "perplexity", "ppl", "mse", "mae", "rmse", "msle", "rmsle", "nmse", "nrmse", "sse",
    "mape", "smape", "mase", "wape", "l1", "l2", "huber", "nll", "ce", "bce", "xent",
    "crossentropy", "brier", "bpc", "bpb", "bpd", "ece", "kl", "kld", "lpips", "hamming",
    "chamfer", "regret", "distance",
})

#: Two words, the first anywhere before the second, that make smaller values better where
#: neither does alone: ``cross_entropy`` (an ``entropy`` may be one to raise),
#: ``neg_log_likelihood`` (a ``log_likelihood`` is one).
LOWER_IS_BETTER_PAIRS = (("cross", "entropy"), ("neg", "likelihood"),
                         ("negative", "likelihood"))


def direction_from_name(metric: str) -> bool:
    """Whether a larger ``metric`` is better, read from its name: smaller is better where
    a word of the name (split at ``_``, ``-``, ``.`` and camelCase; digits end a word) is a
    loss or an error (``loss`` or a word ending in it, ``error``/``err``, ``wer``,
    ``cer``, ``fid``, ``perplexity``/``ppl``, ``mse``/``mae``/``rmse``, ``l1``, ``nll``,
    ``ce``/``bce``, ``cross_entropy``, ``neg_log_likelihood``, ...); larger otherwise
    (``accuracy``, ``f1``, ``bleu``, ``auc``, ``log_likelihood``).

    A guess, used only where the code does not say (``train.higher_is_better`` in
    ``greedylr compare``, where the harness warns of it once and the report says it; a
    metric other than ``metric_for_best_model`` fed to GreedyLR by the HF Trainer
    integration, which warns of it; the monitored metric of the Lightning callback, which
    warns where a GreedyLR's ``eval_mode`` reads it the other way).

    Examples:
        >>> [direction_from_name(m) for m in ("top1_err", "valLoss", "WER", "accuracy")]
        [False, False, False, True]
        >>> [direction_from_name(m) for m in ("val_l1", "neg_log_likelihood", "val_f1")]
        [False, False, True]
    """
    # a word's digits stay with it (l1, f1, top1) and are dropped for the word tests
    # (loss2 is a loss)
    tokens = re.findall(r"[a-z]+[0-9]*", re.sub(r"([a-z])([A-Z])", r"\1_\2", metric).lower())
    words = [token.rstrip("0123456789") for token in tokens]
    if any(t in LOWER_IS_BETTER or w in LOWER_IS_BETTER or w.endswith("loss")
           for t, w in zip(tokens, words, strict=True)):
        return False
    return not any(first in words and second in words[words.index(first) + 1:]
                   for first, second in LOWER_IS_BETTER_PAIRS)
