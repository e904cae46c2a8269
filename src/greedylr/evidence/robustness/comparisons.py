"""Paired comparisons over the stored run table, for the report and its figures."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["finite_median", "paired_ratio"]


def finite_median(values: np.ndarray) -> float:
    """The median of the finite ``values`` (NaN if there are none)."""
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else math.nan


def paired_ratio(runs: dict[str, np.ndarray], schedule: str, baseline: str = "cosine",
                 mask: np.ndarray | None = None) -> np.ndarray:
    """Final loss of ``schedule`` over ``baseline``'s, per (family, condition, seed)."""
    key = np.array([f"{f}|{p}|{int(s)}" for f, p, s in
                    zip(runs["family"], runs["perturbation"], runs["seed"])])
    keep = np.ones(len(key), bool) if mask is None else mask
    base = {k: v for k, v, s, m in zip(key, runs["final_loss"], runs["schedule"], keep)
            if s == baseline and m}
    out = [v / max(base[k], 1e-12) for k, v, s, m in
           zip(key, runs["final_loss"], runs["schedule"], keep)
           if s == schedule and m and k in base]
    return np.array(out, dtype=float)
