"""Our evidence: the paper's replication and the studies behind GreedyLR's defaults.

Built-in workloads on real offline data, the study suites (``greedylr bench``), the
perturbations, the robustness study, the LLM studies and the defaults study. They use the
harness (:mod:`greedylr.studies`) only through its public API, the way a user would.
"""
