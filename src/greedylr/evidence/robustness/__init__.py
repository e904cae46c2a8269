"""The robustness study: thousands of perturbed runs, all the runs of a family at once.

How it is built and why: ``docs/guides/evidence.md`` ("How the robustness study is
built"). The modules, one job each:

=============== =========================================================================
``nets``        the neural families, over batched weights (a leading run axis)
``functions``   the analytic families (test functions of a 10-d point)
``task``        the runs, the data, and what one training step of a family computes
``optim``       Adam over a flat buffer of every run's weights, one LR per run
``presets``     the compared schedules, as per-run LRs of a batch
``engine``      training a family at once (:func:`train_family`), or one run
                (:func:`train_one`, the reference the engine must reproduce)
``recovery``    recovery per perturbation event; the paper's recovery ratio
``design``      what the study runs (quick and full designs)
``tables``      ``runs.csv`` and ``events.csv``: writing and reading them
``speed``       the speed check against one run at a time
``study``       running the study (:func:`run_robustness`), resumable per family
``comparisons`` paired ratios and medians over the stored run table
``figures``     the report's figures
``report``      ``report.md`` (:func:`write_report`), one section at a time
=============== =========================================================================
"""

from greedylr.evidence.robustness.design import StudyDesign, design
from greedylr.evidence.robustness.engine import BASE_LR, FamilyResult, train_family, train_one
from greedylr.evidence.robustness.functions import ANALYTIC
from greedylr.evidence.robustness.nets import NEURAL
from greedylr.evidence.robustness.presets import SCHEDULES, schedule_settings
from greedylr.evidence.robustness.recovery import (
    RECOVERY_TOLERANCE,
    RecoveryEvent,
    paper_recovery_ratio,
    recovery_events,
)
from greedylr.evidence.robustness.report import PAPER, write_report
from greedylr.evidence.robustness.study import run_robustness
from greedylr.evidence.robustness.task import BATCH, FAMILIES, PROBE, PROBE_EVERY, RunSpec

__all__ = [
    "ANALYTIC",
    "BASE_LR",
    "BATCH",
    "FAMILIES",
    "NEURAL",
    "PAPER",
    "PROBE",
    "PROBE_EVERY",
    "RECOVERY_TOLERANCE",
    "SCHEDULES",
    "FamilyResult",
    "RecoveryEvent",
    "RunSpec",
    "StudyDesign",
    "design",
    "paper_recovery_ratio",
    "recovery_events",
    "run_robustness",
    "schedule_settings",
    "train_family",
    "train_one",
    "write_report",
]
