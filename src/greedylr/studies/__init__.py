"""The harness users run on their own code: schedules, trials, a results store, metrics, reports.

``greedylr compare`` points it at a training function to A/B GreedyLR against the schedule
used today. Our own evidence (workloads, suites, the robustness, LLM and defaults studies)
lives apart, in :mod:`greedylr.evidence`, and uses this package's public API.
"""
