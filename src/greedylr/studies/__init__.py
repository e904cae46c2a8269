"""The evaluation system: schedules, workloads, trials, a results store, metrics, reports.

A product feature, not only our evidence: users point it at their own training function
(``greedylr compare``) to A/B GreedyLR against the schedule they use today.
"""
