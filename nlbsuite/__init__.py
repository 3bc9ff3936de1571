"""nlbsuite: the Neural Latents Benchmark '21 evaluation suite.

Library API (the CLI is a thin layer over it)::

    from nlbsuite import load_dataset, run
    record = run("smoothing", "lorenz", phase="val", seed=0)
    print(record.metrics["co-bps"])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from nlbsuite.datasets import load_dataset
    from nlbsuite.runner import fit_predict, run
    from nlbsuite.scoring import evaluate

_LAZY = {
    "load_dataset": "nlbsuite.datasets",
    "evaluate": "nlbsuite.scoring",
    "run": "nlbsuite.runner",
    "fit_predict": "nlbsuite.runner",
}

__all__ = ["__version__", "evaluate", "fit_predict", "load_dataset", "run"]


def __getattr__(name: str) -> Any:
    """Import the public API lazily so ``import nlbsuite`` stays fast."""
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'nlbsuite' has no attribute {name!r}")
