"""A markdown report with PNG figures, from stored results only.

``write_report(DIR)`` reads every result under ``DIR`` and writes ``DIR/report.md`` and
``DIR/figures/*.png``; it never trains nor imports a workload, so a report can be rebuilt
from the result files alone, on any machine. The held-out summary comes first, then each
study's sections (what each says: ``docs/guides/compare.md``). One module per section:
:mod:`.heldout`, :mod:`.sections`, :mod:`.figures`; :mod:`.document` puts them together.

Examples:
    >>> write_report("results/compare")  # doctest: +SKIP
    PosixPath('results/compare/report.md')
"""

from greedylr.studies.report.cells import markdown_table
from greedylr.studies.report.document import EVIDENCE, render_report, write_report
from greedylr.studies.report.heldout import (
    heldout_summary,
    heldout_table,
    print_summary,
    summary_table,
    verdict_lines,
)

__all__ = [
    "EVIDENCE",
    "heldout_summary",
    "heldout_table",
    "markdown_table",
    "print_summary",
    "render_report",
    "summary_table",
    "verdict_lines",
    "write_report",
]
