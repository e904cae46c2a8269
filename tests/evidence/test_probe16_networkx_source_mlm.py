"""networkx_source_mlm's data: whole files held out, nothing of them in the training text,
fixed held-out masks, a model of matrices only (Muon's requirement).

The workload belongs to an unseen probe split: it trains here under cosine only.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from greedylr.evidence import workloads
from greedylr.evidence.workloads import data
from greedylr.evidence.workloads import networkx_source_mlm as nx_mlm
from greedylr.studies.runner import execute_trial
from greedylr.studies.trial import TrialSpec

NAME = "networkx_source_mlm"


def _hashes(ids: np.ndarray, length: int) -> np.ndarray:
    """Every ``length``-long run of ``ids`` hashed by Horner's rule (mod 2**64): written
    apart from the workload's rolling hash, so that a bug there cannot hide a leak here.
    Equal runs hash equal, so a run whose hash no training run has is not in training."""
    ids = ids.astype(np.uint64)
    n = len(ids) - length + 1
    h = np.zeros(max(n, 0), dtype=np.uint64)
    if n <= 0:
        return h
    with np.errstate(over="ignore"):
        for j in range(length):
            h = h * np.uint64(0x9E3779B97F4A7C15) + ids[j:j + n] + np.uint64(1)
    return h


def _doubled(h: np.ndarray, length: int) -> np.ndarray:
    """From the hashes of the ``length``-long runs, a hash of each ``2 * length``-long run
    (of the pair of runs it is made of; equal runs still hash equal)."""
    with np.errstate(over="ignore"):
        return h[:-length] * np.uint64(0xD6E8FEB86659FD93) + h[length:]


def _among(values: np.ndarray, sorted_: np.ndarray) -> np.ndarray:
    at = np.searchsorted(sorted_, values).clip(max=len(sorted_) - 1)
    return sorted_[at] == values


@pytest.fixture(scope="module")
def split() -> nx_mlm.NetworkxText:
    return nx_mlm.networkx_windows()


@pytest.fixture(scope="module")
def train_runs(split) -> np.ndarray:
    """The hashes of every 32-character run of the training stream, in order (across file
    boundaries too, so more runs than the workload checks against)."""
    return _hashes(split.train.numpy(), 32)


@pytest.fixture(scope="module")
def training_text() -> str:
    return "".join(text for _, text, held in nx_mlm.networkx_files() if not held)


def test_the_split_holds_out_whole_files_by_a_hash_of_the_path(split) -> None:
    files = nx_mlm.networkx_files()
    paths = [rel for rel, _, _ in files]
    assert paths == sorted(paths) and len(set(paths)) == len(paths) > 200
    assert not any("tests" in rel.split("/") for rel in paths)  # no test copies of code
    assert all(held == data._held_out(rel) for rel, _, held in files)
    held_out = {rel for rel, _, held in files if held}
    training = {rel for rel, _, held in files if not held}
    assert 0.08 < len(held_out) / len(files) < 0.2
    # the held-out windows come from held-out files only; the near copies are dropped
    assert set(split.held_out_files) | set(split.dropped) == held_out
    assert not set(split.held_out_files) & set(split.dropped)
    assert not set(split.held_out_files) & training
    assert set(split.dropped) == {"algorithms/flow/shortestaugmentingpath.py",
                                  "classes/multigraph.py", "readwrite/graph6.py"}
    # the training stream is exactly the training files' text, in path order
    expected = "".join(text for _, text, held in files if not held)
    assert torch.equal(split.train, torch.from_numpy(data.VOCAB.encode(expected)))
    # no held-out file (kept or dropped) has a training file's exact text
    texts = {text.strip() for _, text, held in files if not held}
    assert not any(text.strip() in texts for _, text, held in files if held)


def test_no_held_out_window_shares_a_32_character_run_with_the_training_text(
        split, train_runs, training_text) -> None:
    windows = split.windows.numpy()
    assert windows.shape == (nx_mlm.HELD_OUT_WINDOWS, nx_mlm.CONTEXT)
    train = np.sort(train_runs)
    runs = np.concatenate([_hashes(row, 32) for row in windows])
    assert not _among(runs, train).any()
    # and, read as text, no held-out window occurs in the training text (a check of the
    # check above on a sample, by plain substring search)
    for row in windows[::16]:
        assert data.VOCAB.decode(row.tolist()) not in training_text
    assert len({bytes(row.astype(np.uint8)) for row in windows}) == len(windows)


def test_no_kept_held_out_file_is_a_near_copy_of_the_training_files(split,
                                                                    train_runs) -> None:
    train = np.sort(_doubled(train_runs, 32))  # every 64-character run
    share = {}
    for rel, text, held in nx_mlm.networkx_files():
        runs = _doubled(_hashes(data.VOCAB.encode(text), 32), 32)
        if held and len(runs):
            share[rel] = _among(runs, train).mean()
    # what the workload keeps shares less than a fifth of its 64-character runs; what
    # it drops shares at least a fifth (most of classes/multigraph.py is classes/graph.py)
    assert max(share[rel] for rel in split.held_out_files if rel in share) < 0.2
    assert min(share[rel] for rel in split.dropped) >= 0.2
    assert share["classes/multigraph.py"] > 0.6


def test_held_out_masks_are_fixed_and_independent_of_the_trials_seed(split) -> None:
    windows, inputs, targets = split.windows, split.inputs, split.targets
    assert windows.shape == inputs.shape == targets.shape  # row-aligned
    hidden = targets != nx_mlm.IGNORE
    assert (hidden.sum(1) == nx_mlm.HIDDEN).all()
    assert torch.equal(targets[hidden], windows[hidden])
    assert torch.equal(inputs[~hidden], windows[~hidden])
    masked = (inputs == nx_mlm.MASK)[hidden].float().mean().item()
    unchanged = (inputs == windows)[hidden].float().mean().item()
    assert 0.75 < masked < 0.85 and 0.07 < unchanged < 0.2  # BERT's 80/10/10
    # the even and the odd rows (scored and fed, split) each hide over a thousand chars
    assert hidden[0::2].sum() > 1000 and hidden[1::2].sum() > 1000
    # a second load, after the global generator has moved, gives the same tensors
    torch.manual_seed(12345)
    torch.rand(10)
    nx_mlm.networkx_windows.cache_clear()
    try:
        again = nx_mlm.networkx_windows()
    finally:
        nx_mlm.networkx_windows.cache_clear()
    for field in ("train", "windows", "inputs", "targets"):
        assert torch.equal(getattr(again, field), getattr(split, field)), field
    assert again.held_out_files == split.held_out_files and again.dropped == split.dropped
    # training masks come from the trial's generator: fresh each batch, by seed
    stream = split.windows[:8]
    a = nx_mlm.masked(stream, torch.Generator().manual_seed(0))
    b = nx_mlm.masked(stream, torch.Generator().manual_seed(1))
    assert not torch.equal(a[1], b[1])


def test_every_parameter_is_a_matrix() -> None:
    model = nx_mlm._Encoder(nx_mlm.WIDTH, nx_mlm.HEADS, nx_mlm.LAYERS, nx_mlm.MLP)
    shapes = {name: p.shape for name, p in model.named_parameters()}
    assert shapes and all(len(s) == 2 for s in shapes.values()), shapes
    assert model(torch.full((3, nx_mlm.CONTEXT), nx_mlm.MASK)).shape == (
        3, nx_mlm.CONTEXT, len(data.VOCAB))


def test_registered_facts_and_a_short_run_under_cosine_with_muon(split) -> None:
    w = workloads.get(NAME)
    assert (w.optimizer, w.metric, w.higher_is_better) == ("muon", "masked_nll", False)
    assert w.task == "language_modelling" and w.family == "masked_lm"
    assert w.eval_every * 10 == w.steps and w.quick_steps is not None
    assert w.quick_steps * 2 == w.steps
    assert [x.name for x in workloads.all_workloads() if x.family == w.family] == [NAME]
    before = split.inputs.clone()
    spec = TrialSpec.make(study="test", workload=NAME, schedule="cosine", seed=0, steps=3,
                          optimizer=w.optimizer, eval_every=1,
                          settings={"workload_feed_split": True})
    result = execute_trial(spec, threads=1)
    assert result["status"] == "ok", result["traceback"]
    assert result["optimizer_used"].rpartition(".")[2] == "Muon"
    rows = result["metrics"]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(math.isfinite(r["masked_nll"]) and math.isfinite(r["feed"]) for r in rows)
    assert abs(result["losses"][0] - math.log(len(data.VOCAB))) < 1.5  # starts near chance
    assert torch.equal(split.inputs, before)  # training never touches the held-out data
