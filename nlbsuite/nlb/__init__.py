"""The seven NLB'21 datasets from their NWB files: tensors equal to nlb_tools', fast.

Public API::

    from nlbsuite.nlb import load_nlb, DATASETS, export
    data = load_nlb("mc_maze_small", phase="val", bin_width_ms=5)   # -> PhaseData
    export(data, "out/")   # train_input.h5 / eval_input.h5 / eval_target.h5

Modules: ``specs`` (dataset parameters), ``nwb`` (file reading), ``tensors`` and ``psth``
(tensor building), ``prepare`` (load / export), ``cache``, ``fetch`` (DANDI download),
``synthetic`` (NLB-format NWB generator with known rates).
"""

from nlbsuite.nlb.prepare import data_dir, export, load_nlb
from nlbsuite.nlb.specs import DATASETS, DatasetSpec, get_spec

__all__ = ["DATASETS", "DatasetSpec", "data_dir", "export", "get_spec", "load_nlb"]
