"""NLB's spike-smoothing baseline (nlb_tools ``examples/baselines/smoothing``).

Held-in rates: held-in spikes convolved with a normalised Gaussian window of
``int(6 sd / bin)`` bins and standard deviation ``int(sd / bin)`` bins (``np.convolve``
"same" alignment). Held-out rates: one Poisson GLM per held-out neuron (scikit-learn
``PoissonRegressor``) from ``log(smoothed held-in + 1e-4)``, refit with 5x ``max_iter``
until it converges (up to 10000), rates clipped to [1e-9, 1e20] — all as in NLB's script.

Kernel sd and GLM alpha: NLB's tuned values (``run_smoothing.py``) at 5 ms for the NLB
datasets. Where there is no tuned value (20 ms bins, unknown datasets, Lorenz) they are
chosen as nlb_tools' ``smoothing_cv_sweep.py`` chooses them: 5-fold cross-validation over
the train trials (fold k = trials k, k+5, ...), the mean over folds of the left-out fold's
held-out co-bps, best of a (kernel sd, alpha) grid. A value set in the config is kept and
only the other one is searched. The choice is in :attr:`Smoothing.extras` (the record's
``extras``).

Forward window (NLB's baseline has none; this is our stated rule): every neuron's rate in
forward bin k is its mean count in forward bin k over the train trials (a forward PSTH).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from nlbsuite.adapter import ModelAdapter, ModelConfig, ModelInfo, fixed_threads
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import require
from nlbsuite.searchspace import Choice

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.linear_model import PoissonRegressor

#: NLB's per-dataset (kernel sd in ms, GLM alpha) at 5 ms, from run_smoothing.py.
NLB_SMOOTHING_PARAMS: dict[str, tuple[float, float]] = {
    "mc_maze": (50, 0.01),
    "mc_rtt": (30, 0.1),
    "area2_bump": (30, 0.01),
    "dmfc_rsg": (60, 0.001),
    "mc_maze_large": (40, 0.1),
    "mc_maze_medium": (60, 0.1),
    "mc_maze_small": (60, 0.1),
}
NLB_TUNED_BIN_MS = 5
LOG_OFFSET = 1e-4
RATE_CLIP = (1e-9, 1e20)


@dataclass
class SmoothingConfig(ModelConfig):
    """``kern_sd_ms`` / ``alpha``: None takes NLB's tuned value at 5 ms, else the
    cross-validated one over ``cv_kern_sds_ms`` x ``cv_alphas`` with ``cv_folds`` folds
    (nlb_tools' sweep: linspace(30, 60, 4) ms x logspace(-3, 0, 4), 5 folds)."""

    kern_sd_ms: float | None = None
    alpha: float | None = None
    max_iter: int = 500
    cv_kern_sds_ms: tuple[float, ...] = (30.0, 40.0, 50.0, 60.0)
    cv_alphas: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    cv_folds: int = 5


def smooth_spikes(spikes: np.ndarray, kern_sd_ms: float, bin_width_ms: int) -> np.ndarray:
    """Gaussian-smooth (trial, time, neuron) spikes along time, exactly as NLB's baseline."""
    from scipy import signal

    n_win = int(6 * kern_sd_ms / bin_width_ms)
    window = signal.windows.gaussian(n_win, int(kern_sd_ms / bin_width_ms), sym=True)
    window /= window.sum()
    full = signal.convolve(spikes, window[None, :, None], mode="full", method="direct")
    start = (n_win - 1) // 2
    return full[:, start : start + spikes.shape[1], :]


def log_smoothed(spikes: np.ndarray, kern_sd_ms: float, bin_width_ms: int) -> np.ndarray:
    """GLM input: ``log(smoothed spikes + 1e-4)``, (trial, time, neuron)."""
    return np.log(smooth_spikes(spikes, kern_sd_ms, bin_width_ms) + LOG_OFFSET)


def fit_poisson_glms(
    x: np.ndarray, y: np.ndarray, alpha: float, max_iter: int = 500
) -> list[PoissonRegressor]:
    """One PoissonRegressor per column of ``y`` (samples, output) from ``x`` (samples, feature),
    refit with 5x ``max_iter`` while it has not converged (up to 10000), as NLB's script."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import PoissonRegressor
    from tqdm import tqdm

    glms = []
    with warnings.catch_warnings():  # stopping at the iteration cap is NLB's rule, not a fault
        warnings.simplefilter("ignore", ConvergenceWarning)
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
    return np.clip(np.stack([glm.predict(x) for glm in glms], axis=1), *RATE_CLIP)


def forward_psth(data: PhaseData) -> np.ndarray | None:
    """The classical baselines' forward-window rule: each neuron's mean count per forward
    bin over the train trials, (forward time, heldin + heldout); None without a window."""
    if data.train_spikes_heldin_forward is None:
        return None
    fwd = [data.train_spikes_heldin_forward, data.train_spikes_heldout_forward]
    return np.concatenate(fwd, axis=2).mean(axis=0)


def with_forward(rates: Rates, psth: np.ndarray | None, data: PhaseData) -> Rates:
    """``rates`` with every eval trial's forward window set to ``psth`` (from
    :func:`forward_psth`)."""
    if psth is not None:
        fwd = np.repeat(psth[None], len(data.eval_spikes_heldin), axis=0)
        rates.eval_rates_heldin_forward = fwd[:, :, : data.n_heldin]
        rates.eval_rates_heldout_forward = fwd[:, :, data.n_heldin :]
    return rates


@dataclass
class SmoothingCV:
    """Cross-validation result: ``scores[i, j]`` is the mean left-out co-bps of kernel sd
    ``kern_sds_ms[i]`` with alpha ``alphas[j]``; ``best`` the argmax (kernel sd, alpha)."""

    kern_sds_ms: tuple[float, ...]
    alphas: tuple[float, ...]
    scores: np.ndarray
    seconds: float

    @property
    def best(self) -> tuple[float, float]:
        i, j = np.unravel_index(int(np.nanargmax(self.scores)), self.scores.shape)
        return float(self.kern_sds_ms[i]), float(self.alphas[j])


def cross_validate_smoothing(
    heldin: np.ndarray,
    heldout: np.ndarray,
    bin_width_ms: int,
    kern_sds_ms: tuple[float, ...],
    alphas: tuple[float, ...],
    n_folds: int = 5,
    max_iter: int = 500,
) -> SmoothingCV:
    """Score every (kernel sd, alpha) by ``n_folds``-fold CV over trials, as nlb_tools'
    ``smoothing_cv_sweep.py``: fold k holds out trials k, k + n_folds, ...; the GLMs fit
    on the other trials; the score is the left-out trials' held-out co-bps, averaged over
    folds. ``heldin``, ``heldout``: (trial, time, neuron) train spikes.

    The GLMs are fit by :func:`fit_poisson_glms`, the fitter the model ships (NLB's
    early-stopped per-neuron ``PoissonRegressor``), so each cell scores exactly the readout
    that alpha would give; each kernel's smoothing is done once for all folds and alphas.
    """
    from tqdm import tqdm

    from nlbsuite.scoring import bits_per_spike

    n_trials = len(heldin)
    require(
        n_trials >= n_folds >= 2,
        f"smoothing cross-validation: {n_trials} train trials cannot make {n_folds} folds",
    )
    start = time.perf_counter()
    fold = np.arange(n_trials) % n_folds
    scores = np.zeros((len(kern_sds_ms), len(alphas), n_folds))
    steps = tqdm(
        total=scores.size, desc="smoothing CV", unit="fit", leave=False, disable=None
    )
    for i, sd in enumerate(kern_sds_ms):
        x = log_smoothed(heldin, sd, bin_width_ms)
        for k in range(n_folds):
            train, test = fold != k, fold == k
            x_tr = x[train].reshape(-1, x.shape[2])
            y_tr = heldout[train].reshape(-1, heldout.shape[2])
            x_te = x[test].reshape(-1, x.shape[2])
            for j, alpha in enumerate(alphas):
                glms = fit_poisson_glms(x_tr, y_tr, alpha, max_iter)
                rates = predict_poisson_glms(glms, x_te).reshape(heldout[test].shape)
                scores[i, j, k] = bits_per_spike(rates, heldout[test])
                steps.update()
    steps.close()
    return SmoothingCV(
        tuple(kern_sds_ms), tuple(alphas), scores.mean(axis=2), time.perf_counter() - start
    )


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
    #: ``nlbsuite tune``'s space: the grid the CV searches (nlb_tools' smoothing_cv_sweep).
    search_space: ClassVar = {
        "kern_sd_ms": Choice(SmoothingConfig.cv_kern_sds_ms),
        "alpha": Choice(SmoothingConfig.cv_alphas),
    }

    def choose_params(self, data: PhaseData) -> tuple[float, float]:
        """(kernel sd in ms, alpha): set in the config, NLB's tuned value at 5 ms, or by
        cross-validation on the train trials. Sets :attr:`extras` to say which."""
        cfg = self.config
        assert isinstance(cfg, SmoothingConfig)
        self.extras: dict[str, Any] = {}
        sd, alpha = cfg.kern_sd_ms, cfg.alpha
        tuned = NLB_SMOOTHING_PARAMS.get(data.dataset)
        if sd is not None and alpha is not None:
            how = "config"
        elif tuned is not None and data.bin_width_ms == NLB_TUNED_BIN_MS:
            how = "nlb" if sd is None and alpha is None else "config+nlb"
            sd, alpha = sd or tuned[0], tuned[1] if alpha is None else alpha
        else:
            cv = cross_validate_smoothing(
                data.train_spikes_heldin,
                data.train_spikes_heldout,
                data.bin_width_ms,
                tuple(cfg.cv_kern_sds_ms) if sd is None else (sd,),
                tuple(cfg.cv_alphas) if alpha is None else (alpha,),
                cfg.cv_folds,
                cfg.max_iter,
            )
            how = "cv"
            sd, alpha = cv.best
            self.extras["cv"] = {
                "kern_sds_ms": list(cv.kern_sds_ms),
                "alphas": list(cv.alphas),
                "co_bps": np.round(cv.scores, 5).tolist(),
            }
        self.extras.update({"kern_sd_ms": float(sd), "alpha": float(alpha), "chosen_by": how})
        return float(sd), float(alpha)

    @fixed_threads  # one thread: tiny GLMs gain nothing, and the sums stay machine-independent
    def fit(self, data: PhaseData) -> None:
        cfg = self.config
        assert isinstance(cfg, SmoothingConfig)
        self._sd, alpha = self.choose_params(data)
        x = log_smoothed(data.train_spikes_heldin, self._sd, data.bin_width_ms)
        y = data.train_spikes_heldout.reshape(-1, data.n_heldout)
        self._glms = fit_poisson_glms(x.reshape(-1, data.n_heldin), y, alpha, cfg.max_iter)
        self._n_params = data.n_heldout * (data.n_heldin + 1)
        self._forward = forward_psth(data)
        self._n_params += 0 if self._forward is None else self._forward.size

    @fixed_threads
    def predict(self, data: PhaseData) -> Rates:
        out = {}
        for part, spikes in (
            ("train", data.train_spikes_heldin),
            ("eval", data.eval_spikes_heldin),
        ):
            smooth = smooth_spikes(spikes, self._sd, data.bin_width_ms)
            x = np.log(smooth.reshape(-1, spikes.shape[2]) + LOG_OFFSET)
            heldout = predict_poisson_glms(self._glms, x).reshape(*spikes.shape[:2], -1)
            out[f"{part}_rates_heldin"] = smooth
            out[f"{part}_rates_heldout"] = heldout
        return with_forward(Rates(**out), self._forward, data)

    def n_parameters(self) -> int:
        return getattr(self, "_n_params", 0)
