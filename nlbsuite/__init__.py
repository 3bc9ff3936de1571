"""nlbsuite: the Neural Latents Benchmark '21 evaluation suite.

Library API (the CLI is a thin layer over it; README "Use from Python")::

    from nlbsuite import load_dataset, run
    record = run("smoothing", "lorenz", phase="val", seed=0)
    print(record.metrics["co-bps"])

``run`` / ``run_seeds`` (``nlbsuite run``), ``submit`` (``nlbsuite submit``),
``score_file`` (``nlbsuite score``), ``validate_submission`` (``nlbsuite validate``),
``write_submission``, ``load_test_phase`` (the test phase's data), ``evaluate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from nlbsuite.datasets import load_dataset
    from nlbsuite.runner import fit_predict, run, run_seeds, submit
    from nlbsuite.scoring import evaluate
    from nlbsuite.submission import score_file, validate_submission, write_submission
    from nlbsuite.testphase import load_test_phase

_LAZY = {
    "load_dataset": "nlbsuite.datasets",
    "evaluate": "nlbsuite.scoring",
    "run": "nlbsuite.runner",
    "run_seeds": "nlbsuite.runner",
    "submit": "nlbsuite.runner",
    "fit_predict": "nlbsuite.runner",
    "score_file": "nlbsuite.submission",
    "validate_submission": "nlbsuite.submission",
    "write_submission": "nlbsuite.submission",
    "load_test_phase": "nlbsuite.testphase",
}

__all__ = [
    "__version__",
    "evaluate",
    "fit_predict",
    "load_dataset",
    "load_test_phase",
    "run",
    "run_seeds",
    "score_file",
    "submit",
    "validate_submission",
    "write_submission",
]


def __getattr__(name: str) -> Any:
    """Import the public API lazily so ``import nlbsuite`` stays fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nlbsuite' has no attribute {name!r}")
