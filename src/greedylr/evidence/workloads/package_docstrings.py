"""A real text-classification task from the CPython standard library: docstring -> package.

Each example is the docstring of a function or class; its label is the top-level
standard-library package the code lives in (``asyncio``, ``email``, ``tkinter``, ...).
The source comes from :func:`greedylr.evidence.workloads.data.stdlib_files` (tests, IDLE
and site-packages left out), so nothing is downloaded. Which packages take part is a
rule, not a list (the largest packages with enough files), because the standard library
changes between Python versions (``distutils`` left in 3.12); the committed results were
made with Python 3.11 (8 labels: asyncio, distutils, email, importlib, lib2to3,
multiprocessing, tkinter, xml).

The split is *by source file*, so that nothing from a held-out file (a near-duplicate
docstring, a copied method) can leak into training, and every docstring text that
occurs twice anywhere is dropped. The split does not depend on the seed: every trial,
every seed and every machine with the same Python version scores on the same examples.

Examples:
    >>> task = docstring_task()                                   # doctest: +SKIP
    >>> len(task.labels), len(task.train), len(task.test)          # doctest: +SKIP
    (8, 1493, 456)
"""

from __future__ import annotations

import ast
import functools
import hashlib
import random
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from greedylr.evidence.workloads.data import stdlib_files

__all__ = ["DocstringTask", "Example", "docstring_task"]


@dataclass(frozen=True)
class Example:
    """One docstring, its label index and the file it came from (for split audits)."""

    text: str
    label: int
    source: str


@dataclass(frozen=True)
class DocstringTask:
    """A labelled docstring data set with a file-disjoint train / held-out split."""

    labels: tuple[str, ...]
    train: tuple[Example, ...]
    test: tuple[Example, ...]


def _docstrings(source: str, min_words: int) -> Iterator[str]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            doc = ast.get_docstring(node)
            if doc:
                text = " ".join(doc.split())
                if len(text.split()) >= min_words:
                    yield text


def _pick_held_out_files(by_file: dict[str, list[str]], fraction: float, salt: str) -> set[str]:
    """Whole files for the held-out side, about ``fraction`` of the examples.

    A plain per-file coin flip is badly unbalanced when one file holds most of a
    package (``tkinter/__init__.py``): it sends either nearly all or nearly none of the
    package to the held-out side. Instead, files are visited in a stable hashed order
    and taken while they keep the held-out share under 1.5x the target, until the
    target is reached, so every package gets a fair held-out share from whole files.
    """
    total = sum(len(v) for v in by_file.values())
    target = fraction * total
    order = sorted(by_file, key=lambda f: hashlib.sha256(f"{salt}:{f}".encode()).digest())
    chosen: set[str] = set()
    count = 0
    for source in order:
        if count >= target:
            break
        if count + len(by_file[source]) <= 1.5 * target:
            chosen.add(source)
            count += len(by_file[source])
    return chosen


@functools.lru_cache(maxsize=4)
def docstring_task(
    *,
    num_labels: int = 8,
    min_files: int = 10,
    min_words: int = 4,
    max_per_label: int = 250,
    held_out: float = 0.2,
) -> DocstringTask:
    """Classify a function's or class's docstring by its top-level stdlib package.

    Args:
        num_labels: how many packages (classes) take part: the largest ones by docstring
            count among those with at least ``min_files`` files.
        min_files: packages with fewer files are left out, because a file-level split
            of two or three files cannot give both sides a fair share.
        min_words: shorter docstrings ("Return x.") carry no signal about the package.
        max_per_label: cap per class on the training side, so that the largest package
            (tkinter) does not dominate; the held-out side is capped at a quarter of it.
        held_out: the fraction of each package's *files* that go to the held-out side.

    Returns:
        The task. A docstring text that occurs more than once (inherited boilerplate,
        identical docstrings in two packages) is dropped entirely, so that no held-out
        text is also a training text and no text has two labels.
    """
    per_package: dict[str, list[tuple[str, str]]] = defaultdict(list)
    files_per_package: Counter[str] = Counter()
    for rel, source, _ in stdlib_files():
        package, _, rest = rel.partition("/")
        if not rest:  # top-level modules are not a package family
            continue
        files_per_package[package] += 1
        for text in _docstrings(source, min_words):
            per_package[package].append((text, rel))

    text_counts = Counter(t for items in per_package.values() for t, _ in items)
    eligible = [p for p in per_package if files_per_package[p] >= min_files]
    eligible.sort(key=lambda p: (-len(per_package[p]), p))
    labels = tuple(sorted(eligible[:num_labels]))
    if len(labels) < 2:
        raise RuntimeError(f"only {len(labels)} stdlib packages qualify: {labels}")

    train: list[Example] = []
    test: list[Example] = []
    rng = random.Random(0)  # the cap's subsample; fixed so the task is the same everywhere
    for index, package in enumerate(labels):
        by_file: dict[str, list[str]] = defaultdict(list)
        for text, source in per_package[package]:
            if text_counts[text] == 1:
                by_file[source].append(text)
        test_files = _pick_held_out_files(by_file, held_out, salt=package)
        side: dict[bool, list[Example]] = {False: [], True: []}
        for source, texts in sorted(by_file.items()):
            side[source in test_files].extend(Example(t, index, source) for t in texts)
        for is_test, cap in ((False, max_per_label), (True, max(1, max_per_label // 4))):
            items = side[is_test]
            if len(items) > cap:
                items = rng.sample(items, cap)
            (test if is_test else train).extend(items)
    rng.shuffle(train)
    return DocstringTask(labels=labels, train=tuple(train), test=tuple(test))
