"""The report's figures: matplotlib ``Figure`` objects (no pyplot state) saved as SVG bytes.

Each function takes the numbers :mod:`nlbsuite.report.figdata` computed and returns SVG;
dense marks (rasters, heat maps, scatters) are rasterised inside the SVG to keep it small.
"""

from __future__ import annotations

import io

import numpy as np
from matplotlib.figure import Figure

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]


def svg(fig: Figure) -> bytes:
    """``fig`` as SVG bytes without a date stamp (the same figure gives the same bytes)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    return buf.getvalue()


def metric_bars(
    labels: list[str],
    metrics: dict[str, tuple[np.ndarray, np.ndarray]],
    arrows: dict[str, str],
) -> bytes:
    """One panel per metric: a horizontal bar per row (mean over seeds) with error bars
    (std over seeds). ``metrics``: name -> (means (row,), errors (row,))."""
    n = len(metrics)
    fig = Figure(figsize=(3.2 * n, 0.35 * len(labels) + 1.2))
    y = np.arange(len(labels))
    for i, (name, (mean, err)) in enumerate(metrics.items()):
        ax = fig.add_subplot(1, n, i + 1)
        ok = np.isfinite(mean)
        ax.barh(y[ok], mean[ok], xerr=np.nan_to_num(err[ok]), color=PALETTE[i % 7], capsize=3)
        ax.set_yticks(y, labels if i == 0 else [""] * len(labels), fontsize=8)
        ax.invert_yaxis()
        ax.set_title(f"{name} {arrows.get(name, '')}", fontsize=9)
        ax.axvline(0, color="k", lw=0.6)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return svg(fig)


def psth(
    conds: np.ndarray, neurons: np.ndarray, pred: np.ndarray, true: np.ndarray, bin_ms: int
) -> bytes:
    """Rows: neurons; columns: conditions. True PSTH (black) and predicted condition mean."""
    n_c, n_t, n_n = pred.shape
    fig = Figure(figsize=(2.2 * n_c, 1.6 * n_n))
    t = np.arange(n_t) * bin_ms
    for j in range(n_n):
        for i in range(n_c):
            ax = fig.add_subplot(n_n, n_c, j * n_c + i + 1)
            ax.plot(t, true[i, :, j], color="k", lw=1.2, label="true PSTH")
            ax.plot(t, pred[i, :, j], color=PALETTE[0], lw=1.2, label="predicted")
            ax.tick_params(labelsize=6)
            if j == 0:
                ax.set_title(f"condition {conds[i]}", fontsize=8)
            if i == 0:
                ax.set_ylabel(f"neuron {neurons[j]}\nspikes/bin", fontsize=7)
            if j == n_n - 1:
                ax.set_xlabel("ms", fontsize=7)
    fig.axes[0].legend(fontsize=6, loc="upper right")
    fig.subplots_adjust(left=0.1, right=0.98, bottom=0.1, top=0.9, wspace=0.3, hspace=0.4)
    return svg(fig)


def latents(proj: np.ndarray, conditions: np.ndarray | None, title: str) -> bytes:
    """Latent trajectories (trial, time, 2), one line per trial coloured by condition."""
    from matplotlib import colormaps
    from matplotlib.collections import LineCollection

    fig = Figure(figsize=(4, 3.6))
    ax = fig.add_subplot()
    conds = np.zeros(len(proj), int) if conditions is None else np.asarray(conditions)
    _, code = np.unique(conds, return_inverse=True)
    n = code.max() + 1
    colors = (
        [PALETTE[k] for k in code] if n <= len(PALETTE) else colormaps["viridis"](code / n)
    )
    ax.add_collection(LineCollection(list(proj), colors=colors, linewidths=0.8, alpha=0.8))
    ax.scatter(proj[:, 0, 0], proj[:, 0, 1], c=colors, s=4)
    ax.autoscale()
    ax.set_xlabel("PC 1", fontsize=8)
    ax.set_ylabel("PC 2", fontsize=8)
    ax.set_title(title, fontsize=9)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return svg(fig)


def velocity(true: np.ndarray, pred: np.ndarray, trials: list[int], bin_ms: int) -> bytes:
    """Decoded (colour) and true (black) velocity per component over time, a column per
    eval trial. ``true``, ``pred``: (trial, time, dim)."""
    n_dim = true.shape[2]
    fig = Figure(figsize=(2.6 * len(trials), 1.5 * n_dim))
    t = np.arange(true.shape[1]) * bin_ms
    for d in range(n_dim):
        for i, trial in enumerate(trials):
            ax = fig.add_subplot(n_dim, len(trials), d * len(trials) + i + 1)
            ax.plot(t, true[trial, :, d], color="k", lw=1.1, label="true")
            ax.plot(t, pred[trial, :, d], color=PALETTE[1], lw=1.1, label="decoded")
            ax.tick_params(labelsize=6)
            if d == 0:
                ax.set_title(f"eval trial {trial}", fontsize=8)
            if i == 0:
                ax.set_ylabel(f"velocity {'xyz'[d] if d < 3 else d}", fontsize=7)
    fig.axes[0].legend(fontsize=6)
    fig.tight_layout()
    return svg(fig)


def raster(
    spikes: np.ndarray | None, rates: np.ndarray, trials: list[int], n_heldin: int, bin_ms: int
) -> bytes:
    """Per eval trial: spike raster (top; a dark cell per bin with spikes, held-out neurons
    below the red line) and predicted rates as a heat map on one colour scale (bottom).
    ``spikes``, ``rates``: (trial, time, neuron)."""
    rows = 2 if spikes is not None else 1
    fig = Figure(figsize=(3.2 * len(trials) + 0.6, 2.3 * rows))
    extent = (0, rates.shape[1] * bin_ms, rates.shape[2], 0)
    vmax = float(rates[trials].max())
    for i, trial in enumerate(trials):
        if spikes is not None:
            ax = fig.add_subplot(rows, len(trials), i + 1)
            counts = np.minimum(np.nan_to_num(spikes[trial]), 3).T
            ax.imshow(counts, aspect="auto", extent=extent, cmap="Greys", vmin=0, vmax=3,
                      interpolation="nearest")
            ax.axhline(n_heldin, color=PALETTE[3], lw=0.6)
            ax.set_title(f"eval trial {trial}: spikes", fontsize=8)
            ax.tick_params(labelsize=6)
            if i == 0:
                ax.set_ylabel("neuron (held-out below line)", fontsize=7)
        ax = fig.add_subplot(rows, len(trials), (rows - 1) * len(trials) + i + 1)
        im = ax.imshow(rates[trial].T, aspect="auto", extent=extent, cmap="magma", vmin=0,
                       vmax=vmax, interpolation="nearest")
        ax.axhline(n_heldin, color="w", lw=0.6)
        ax.set_title(f"eval trial {trial}: predicted rates", fontsize=8)
        ax.set_xlabel("ms", fontsize=7)
        ax.tick_params(labelsize=6)
    fig.subplots_adjust(left=0.07, right=0.9, bottom=0.12, top=0.92, wspace=0.25, hspace=0.4)
    cax = fig.add_axes((0.92, 0.12, 0.012, 0.3 if rows == 2 else 0.8))
    fig.colorbar(im, cax=cax, label="spikes/bin").ax.tick_params(labelsize=6)
    return svg(fig)


def rates_vs_truth(true: np.ndarray, pred: np.ndarray, title: str) -> bytes:
    """Predicted against true held-out rates (a scatter with the identity line)."""
    fig = Figure(figsize=(3.8, 3.6))
    ax = fig.add_subplot()
    ax.scatter(true, pred, s=3, alpha=0.3, color=PALETTE[0], rasterized=True)
    hi = float(max(true.max(initial=0), pred.max(initial=0))) * 1.05 or 1.0
    ax.plot([0, hi], [0, hi], color="k", lw=0.8)
    ax.set_xlim(0, hi)
    ax.set_ylim(0, hi)
    ax.set_xlabel("true rate (spikes/bin)", fontsize=8)
    ax.set_ylabel("predicted rate (spikes/bin)", fontsize=8)
    ax.set_title(title, fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return svg(fig)


def neuron_bps(values: np.ndarray, co_bps: float, ceiling: np.ndarray | None = None) -> bytes:
    """co-bps of each held-out neuron (bars), the population co-bps (line) and, on
    synthetic data, each neuron's ceiling (the true rates' co-bps, dots)."""
    fig = Figure(figsize=(max(4.0, 0.12 * len(values) + 1.5), 2.4))
    ax = fig.add_subplot()
    x = np.arange(len(values))
    ax.bar(x, np.nan_to_num(values), color=PALETTE[0], label="model")
    if ceiling is not None:
        ax.plot(x, ceiling, "o", color="k", ms=2.5, label="ceiling (true rates)")
    ax.axhline(co_bps, color=PALETTE[3], lw=1, label=f"co-bps {co_bps:.3f}")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel("held-out neuron", fontsize=8)
    ax.set_ylabel("bits/spike", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=6)
    fig.tight_layout()
    return svg(fig)


def paired_scatter(a: np.ndarray, b: np.ndarray, label_a: str, label_b: str) -> bytes:
    """Per-neuron co-bps of run b against run a on the same neurons (identity line)."""
    fig = Figure(figsize=(3.4, 3.3))
    ax = fig.add_subplot()
    ax.scatter(a, b, s=10, color=PALETTE[0])
    finite = np.concatenate([a[np.isfinite(a)], b[np.isfinite(b)]])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    pad = 0.05 * (hi - lo or 1.0)
    ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="k", lw=0.8)
    ax.set_xlabel(label_a, fontsize=7)
    ax.set_ylabel(label_b, fontsize=7)
    ax.set_title("per-neuron co-bps", fontsize=8)
    ax.tick_params(labelsize=7)
    fig.tight_layout()
    return svg(fig)
