"""How does sympy print this expression? A pointer-generator network (See, Liu and
Manning 2017: an encoder-decoder with attention whose every output character is a
mixture, weighted by a learned gate, of a character generated from the vocabulary and
one copied from the input through the attention), character by character; Adagrad, as
See et al. trained it.

The data is the expected outputs of sympy's printers that its own test suite asserts
(:func:`~greedylr.evidence.workloads.data.sympy_printed`: ``latex(conjugate(x ** 2))``
-> ``\\overline{x}^{2}``, ``mcode(x ** 3)`` -> ``x^3``, ``julia_code(Rational(3, 7))``
-> ``3 // 7``; 18 printers, LaTeX the most; 1,696 train / 447 held-out calls, every
printer's call of a held-out expression held out). An encoder GRU of 48 each way over
the call's characters, a decoder GRU of 96 over the output's (teacher forced), attention
by a bilinear score, the copy gate from the decoder's state, the context and the input
character. The held-out metric is the negative log-likelihood of the output's characters
under teacher forcing (nats a character, ``<eos>`` included); their accuracy is
reported too. On the scored half, a character unigram of the training outputs (add-one)
scores 3.84, a bigram 2.64, this model 1.39 at its LR (its loss barely moves between
0.0316 and 0.1 and climbs past 3.9 at 0.316). The fourteenth probe split."""

from __future__ import annotations

import functools

import torch
from torch import nn
from torch.nn import functional as F

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import (
    PRINTED_CALL_MAX,
    PRINTED_MAX,
    VOCAB,
    padded,
    sympy_printed,
)
from greedylr.evidence.workloads.loop import run, split_evaluator

__all__ = ["train"]

BATCH = 32
TARGET_MAX = PRINTED_MAX + 2  # <bos> text <eos>


@functools.cache
def _tensors() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    def encode(pairs: tuple[tuple[str, str], ...]) -> tuple[torch.Tensor, torch.Tensor]:
        calls = padded((VOCAB.encode(call) for call, _ in pairs), PRINTED_CALL_MAX)
        texts = padded(([VOCAB.BOS, *VOCAB.encode(text), VOCAB.EOS] for _, text in pairs),
                       TARGET_MAX)
        return torch.from_numpy(calls), torch.from_numpy(texts)

    train, test = sympy_printed()
    return (*encode(train), *encode(test))


class _PointerGenerator(nn.Module):
    def __init__(self, vocab: int, embed: int = 32, hidden: int = 48) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, embed, padding_idx=VOCAB.PAD)
        self.encoder = nn.GRU(embed, hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, 2 * hidden)
        self.decoder = nn.GRU(embed, 2 * hidden, batch_first=True)
        self.score = nn.Linear(2 * hidden, 2 * hidden, bias=False)
        self.generate = nn.Linear(4 * hidden, vocab)
        self.gate = nn.Linear(4 * hidden + embed, 1)

    def forward(self, calls: torch.Tensor, inputs: torch.Tensor) -> torch.Tensor:
        """Log-probabilities of the next character, [batch, target length, vocab]."""
        padding = calls == VOCAB.PAD
        memory, _ = self.encoder(self.embed(calls))  # [B, S, 2H]
        summary = (memory * ~padding[..., None]).sum(1) / (~padding).sum(1, keepdim=True)
        embedded = self.embed(inputs)
        states, _ = self.decoder(embedded, torch.tanh(self.bridge(summary))[None])
        scores = self.score(states) @ memory.transpose(1, 2)  # [B, T, S]
        attention = scores.masked_fill(padding[:, None], float("-inf")).softmax(-1)
        context = attention @ memory
        features = torch.cat([states, context], -1)
        generated = self.generate(features).softmax(-1)
        gate = torch.sigmoid(self.gate(torch.cat([features, embedded], -1)))
        copied = torch.zeros_like(generated).scatter_add_(
            2, calls[:, None].expand(-1, inputs.shape[1], -1), attention)
        return torch.log(gate * generated + (1 - gate) * copied + 1e-9)


def _trimmed(ids: torch.Tensor) -> torch.Tensor:
    """The columns up to the batch's longest row: padding the GRUs would only run over."""
    return ids[:, :int((ids != VOCAB.PAD).sum(1).max())]


def _nll(model: nn.Module, calls: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    log_p = model(calls, texts[:, :-1])
    return F.nll_loss(log_p.reshape(-1, log_p.shape[-1]), texts[:, 1:].reshape(-1),
                      ignore_index=VOCAB.PAD)


def _metrics(model: nn.Module, calls: torch.Tensor, texts: torch.Tensor
             ) -> dict[str, float]:
    log_p = model(calls, texts[:, :-1])
    target = texts[:, 1:]
    keep = target != VOCAB.PAD
    nll = F.nll_loss(log_p[keep], target[keep]).item()
    accuracy = (log_p.argmax(-1) == target)[keep].float().mean().item()
    return {"nll": nll, "char_accuracy": accuracy, "loss": nll}


def train(trial) -> None:
    calls, texts, held_calls, held_texts = _tensors()

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.randint(0, len(calls), (BATCH,), generator=generator)
        return _trimmed(calls[rows]), _trimmed(texts[rows])

    run(trial, _PointerGenerator(len(VOCAB)), sample, lambda m, b: _nll(m, *b),
        split_evaluator(trial, _metrics, _trimmed(held_calls), _trimmed(held_texts)))


register(
    Workload(
        name="sympy_printer_pointer",
        train=train,
        task="seq2seq",
        family="pointer_generator",
        data="sympy's printer tests, an expression -> its printed text in one of 18 "
             "languages (1,696 train / 447 held-out calls)",
        lr=0.0316,
        steps=300,
        optimizer="adagrad",
        eval_every=30,
        metric="nll",
        higher_is_better=False,
        quick_steps=150,
    )
)
