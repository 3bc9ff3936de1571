"""NLB's spike-smoothing baseline (nlb_tools ``examples/baselines/smoothing``).

Held-in rates: held-in spikes convolved with a normalised Gaussian window of
``int(6 sd / bin)`` bins and standard deviation ``int(sd / bin)`` bins (``np.convolve``
"same" alignment). Held-out rates: one Poisson GLM per held-out neuron (scikit-learn
``PoissonRegressor``) from ``log(smoothed held-in + 1e-4)``, refit with 5x ``max_iter``
until it converges (up to 10000), rates clipped to [1e-9, 1e20] — all as in NLB's script.

Forward window (NLB's baseline has none; this is our stated rule): every neuron's rate in
forward bin k is its mean count in forward bin k over the train trials (a forward PSTH).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import signal
from sklearn.linear_model import PoissonRegressor
from tqdm import tqdm

from nlbsuite.adapter import ModelAdapter, ModelConfig, ModelInfo, fixed_threads
from nlbsuite.data import PhaseData, Rates

#: NLB's per-dataset (kernel sd in ms, GLM alpha), from run_smoothing.py.
NLB_SMOOTHING_PARAMS: dict[str, tuple[float, float]] = {
    "mc_maze": (50, 0.01),
    "mc_rtt": (30, 0.1),
    "area2_bump": (30, 0.01),
    "dmfc_rsg": (60, 0.001),
    "mc_maze_large": (40, 0.1),
    "mc_maze_medium": (60, 0.1),
    "mc_maze_small": (60, 0.1),
}
DEFAULT_PARAMS = (50.0, 0.01)
LOG_OFFSET = 1e-4


@dataclass
class SmoothingConfig(ModelConfig):
    """``kern_sd_ms`` / ``alpha``: None picks NLB's value for the dataset (else 50 ms / 0.01)."""

    kern_sd_ms: float | None = None
    alpha: float | None = None
    max_iter: int = 500


def smooth_spikes(spikes: np.ndarray, kern_sd_ms: float, bin_width_ms: int) -> np.ndarray:
    """Gaussian-smooth (trial, time, neuron) spikes along time, exactly as NLB's baseline."""
    n_win = int(6 * kern_sd_ms / bin_width_ms)
    window = signal.windows.gaussian(n_win, int(kern_sd_ms / bin_width_ms), sym=True)
    window /= window.sum()
    full = signal.convolve(spikes, window[None, :, None], mode="full", method="direct")
    start = (n_win - 1) // 2
    return full[:, start : start + spikes.shape[1], :]


def fit_poisson_glms(
    x: np.ndarray, y: np.ndarray, alpha: float, max_iter: int = 500
) -> list[PoissonRegressor]:
    """One PoissonRegressor per column of ``y`` (samples, output) from ``x`` (samples, feature),
    refit with 5x ``max_iter`` while it has not converged (up to 10000), as NLB's script."""
    glms = []
    for chan in tqdm(
        range(y.shape[1]), desc="Poisson GLMs", unit="neuron", leave=False, disable=None
    ):
        iters = max_iter
        glm = PoissonRegressor(alpha=alpha, max_iter=iters).fit(x, y[:, chan])
        while glm.n_iter_ == iters and iters < 10000:
            iters *= 5
            glm = PoissonRegressor(alpha=alpha, max_iter=iters).fit(x, y[:, chan])
        glms.append(glm)
    return glms


def predict_poisson_glms(glms: list[PoissonRegressor], x: np.ndarray) -> np.ndarray:
    """(samples, output) rates of the fitted GLMs, clipped to [1e-9, 1e20] as NLB's script."""
    return np.clip(np.stack([glm.predict(x) for glm in glms], axis=1), 1e-9, 1e20)


class Smoothing(ModelAdapter):
    """Spike smoothing + Poisson GLM: the NLB'21 reference baseline."""

    info = ModelInfo(
        name="smoothing",
        citation="Pei et al. 2021, Neural Latents Benchmark '21 (NeurIPS Datasets & Benchmarks)",
        url="https://github.com/neurallatents/nlb_tools",
        description="Gaussian smoothing of held-in spikes + Poisson GLM to held-out neurons",
    )
    config_class = SmoothingConfig
    presets: ClassVar = {"smoke": {}, "cpu": {}, "paper": {}}

    def _params(self, dataset: str) -> tuple[float, float]:
        cfg = self.config
        assert isinstance(cfg, SmoothingConfig)
        sd, alpha = NLB_SMOOTHING_PARAMS.get(dataset, DEFAULT_PARAMS)
        return (cfg.kern_sd_ms or sd, alpha if cfg.alpha is None else cfg.alpha)

    def _log_smoothed(self, spikes: np.ndarray, bin_width_ms: int) -> tuple[np.ndarray, np.ndarray]:
        """Smoothed spikes (trial, time, neuron) and their log, flattened to (samples, neuron)."""
        smooth = smooth_spikes(spikes, self._sd, bin_width_ms)
        return smooth, np.log(smooth.reshape(-1, spikes.shape[2]) + LOG_OFFSET)

    @fixed_threads  # one thread: tiny GLMs gain nothing, and the sums stay machine-independent
    def fit(self, data: PhaseData) -> None:
        cfg = self.config
        assert isinstance(cfg, SmoothingConfig)
        self._sd, alpha = self._params(data.dataset)
        _, x = self._log_smoothed(data.train_spikes_heldin, data.bin_width_ms)
        y = data.train_spikes_heldout.reshape(-1, data.n_heldout)
        self._glms = fit_poisson_glms(x, y, alpha, cfg.max_iter)
        self._n_params = data.n_heldout * (data.n_heldin + 1)
        self._forward: np.ndarray | None = None
        if data.train_spikes_heldin_forward is not None:
            fwd = np.concatenate(
                [data.train_spikes_heldin_forward, data.train_spikes_heldout_forward], axis=2
            )
            self._forward = fwd.mean(axis=0)  # (time, neuron)
            self._n_params += self._forward.size

    @fixed_threads
    def predict(self, data: PhaseData) -> Rates:
        out = {}
        for part, spikes in (
            ("train", data.train_spikes_heldin),
            ("eval", data.eval_spikes_heldin),
        ):
            smooth, x = self._log_smoothed(spikes, data.bin_width_ms)
            heldout = predict_poisson_glms(self._glms, x).reshape(*spikes.shape[:2], -1)
            out[f"{part}_rates_heldin"] = smooth
            out[f"{part}_rates_heldout"] = heldout
        rates = Rates(**out)
        if self._forward is not None:
            n_eval = data.eval_spikes_heldin.shape[0]
            fwd = np.repeat(self._forward[None], n_eval, axis=0)
            rates.eval_rates_heldin_forward = fwd[:, :, : data.n_heldin]
            rates.eval_rates_heldout_forward = fwd[:, :, data.n_heldin :]
        return rates

    def n_parameters(self) -> int:
        return getattr(self, "_n_params", 0)
