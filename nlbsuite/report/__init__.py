"""The HTML report: ``nlbsuite report`` builds a static site from result records.

An index (one sortable table per dataset key and phase, bar charts), a page per run (config,
provenance, every metric, figures from the predictions saved with the run) and comparison
pages; see :mod:`nlbsuite.report.site`. matplotlib is imported only while building.
"""

from __future__ import annotations

from nlbsuite.report.site import build_report

__all__ = ["build_report"]
