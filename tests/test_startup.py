"""Start-up cost: what ``nlbsuite --help``, ``models`` and ``datasets`` import, read from
``sys.modules`` of a fresh interpreter (import times are too noisy to assert on)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

#: Packages a listing must not import: model frameworks, the scorer's compiler, NWB/HDF5
#: readers, the scientific stack beyond numpy, plotting, the DANDI client, table/progress
#: helpers.
HEAVY = (
    "torch",
    "torchsde",
    "numba",
    "llvmlite",
    "h5py",
    "pynwb",
    "hdmf",
    "pandas",
    "sklearn",
    "scipy",
    "matplotlib",
    "dandi",
    "tabulate",
    "tqdm",
    "ray",
)

PROBE = """
import sys
from nlbsuite.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print("MODULES", " ".join(sorted({m.split(".")[0] for m in sys.modules})))
print("CODE", code)
"""


def run_cli(*argv: str) -> tuple[set[str], str, str]:
    """(top-level packages imported, stdout, stderr) of ``nlbsuite ARGV`` in a new process."""
    proc = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=300,
    )
    lines = proc.stdout.splitlines()
    modules = next(line for line in lines if line.startswith("MODULES")).split()[1:]
    assert lines[-1] == "CODE 0", proc.stderr
    return set(modules), proc.stdout, proc.stderr


def test_help_imports_no_numpy_stack():
    modules, out, _ = run_cli("--help")
    assert "prepare" in out and "models" in out  # every command's parser was built
    assert "analyze" in out  # a model package's command (entry point), listed unimported
    assert modules.isdisjoint({"numpy", "baselines", *HEAVY}), modules & {"numpy", *HEAVY}


def test_subcommand_help_imports_no_numpy_stack():
    modules, out, _ = run_cli("run", "--help")
    assert "--preset" in out
    assert modules.isdisjoint({"numpy", *HEAVY}), modules & {"numpy", *HEAVY}


def test_models_lists_every_model_without_importing_frameworks():
    modules, out, _ = run_cli("models")
    for name in (
        "gpfa",
        "langevin_flow",
        "latent_sde",
        "lowrank_rnn",
        "mean_rate",
        "slds",
        "smoothing",
    ):
        assert name in out
    assert "smoke, cpu, paper" in out and "unavailable" not in out
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)


def test_datasets_imports_nothing_heavy():
    modules, out, _ = run_cli("datasets")
    assert "mc_maze_small" in out and "lorenz" in out
    assert modules.isdisjoint(HEAVY), modules & set(HEAVY)


def test_torch_model_packages_are_light_and_serve_their_networks_lazily():
    code = (
        "import sys, baselines.latent_sde, baselines.langevin_flow, baselines.lowrank_rnn\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=300,
        check=True,
    ).stdout
    assert out.strip() == "False"
    pytest.importorskip("torch")
    import baselines.latent_sde
    import baselines.lowrank_rnn
    from baselines.latent_sde import network

    assert baselines.latent_sde.LatentSDEModule is network.LatentSDEModule
    assert baselines.lowrank_rnn.run_smc.__module__ == "baselines.lowrank_rnn.network"
    with pytest.raises(AttributeError):
        _ = baselines.latent_sde.NoSuchName


def imported_by(statement: str) -> set[str]:
    """Top-level packages ``python -X importtime -c STATEMENT`` reports importing."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=300,
        check=True,
    )
    rows = [line.split("|") for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return {row[-1].strip().split(".")[0] for row in rows[1:]}  # rows[0] is the header


def test_leaderboard_and_compare_import_no_scorer_stack():
    """They read metric metadata from the catalogue, not from the scorer."""
    modules = imported_by("import nlbsuite.leaderboard, nlbsuite.compare")
    assert "nlbsuite" in modules
    assert modules.isdisjoint({"numba", "llvmlite", "torch", "h5py"}), modules


def test_catalog_imports_no_numpy():
    modules = imported_by("import nlbsuite.catalog")
    assert modules.isdisjoint({"numpy", *HEAVY}), modules & {"numpy", *HEAVY}
