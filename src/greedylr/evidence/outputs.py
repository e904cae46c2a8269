"""The compact, committable files a study writes beside its report: CSV and JSON tables."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["write_csv", "write_json"]


def write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """``header`` (when there is one) and then ``rows`` as a CSV file at ``path``."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        if header:
            writer.writerow(header)
        writer.writerows(rows)


def write_json(path: Path, data: Any) -> None:
    """``data`` as indented JSON at ``path``; what JSON has no type for is written as its
    ``str``."""
    path.write_text(json.dumps(data, indent=1, default=str) + "\n")
