"""NLB's GPFA baseline (nlb_tools ``examples/baselines/gpfa/run_gpfa.py``).

1. GPFA (Yu et al. 2009; elephant's implementation, which square-roots the counts) with
   ``latent_dim`` latents is fit to the train trials' held-in spikes; the latents of every
   trial are the orthonormalised posterior means (elephant's ``latent_variable_orth``).
2. Held-in rates: a ridge regression (``ridge_alpha``) from the latents to the held-in
   counts, rectified at 1e-10.
3. Held-out rates: one Poisson GLM per held-out neuron (``glm_alpha``) from the held-in
   *rates* of step 2 (as NLB's script does, not from the latents). NLB fits scikit-learn's
   ``PoissonRegressor`` per neuron, refitting with 5x ``max_iter`` up to 10000 iterations;
   at alpha 0 on these features it rarely converges and took minutes even on tiny Lorenz
   data. We minimise the same objective with all neurons at once
   (:func:`baselines.smoothing.fit_poisson_batch`, tested equal to ``PoissonRegressor`` at
   alpha 0, 0.01 and 1). Rates clipped to [1e-9, 1e20] (NLB's GPFA script does not clip;
   the clip only keeps an overflowing exp finite).
   Known problem: at NLB's GLM alpha 0 on MC_Maze_Small (107 rate features) the exact
   minimiser overfits the train trials (eval rates reach the clip, co-bps ~ -7e18 at
   20 ms); NLB's iteration-capped per-neuron fits stop before that. Until this is
   settled, run it with ``--set glm_alpha=0.01``.

NLB's tuned (latent dim, ridge alpha, GLM alpha) per dataset are from run_gpfa.py's
``default_dict``; NLB uses them at both bin widths. Other datasets (Lorenz) use
:data:`DEFAULT_GPFA_PARAMS`.

Elephant is fed the count arrays directly (the ``(T, y)`` sequences its ``GPFA.fit`` builds
from neo spike trains), skipping one neo object per trial and neuron; the test suite proves
the result equal to ``GPFA.fit_transform`` on spike trains.

Forward window (NLB's GPFA has none; this is our stated rule, the same as the smoothing
baseline's): every neuron's rate in forward bin k is its mean count in forward bin k over
the train trials.
"""

from __future__ import annotations

import contextlib
import functools
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from baselines.smoothing import (
    fit_poisson_batch,
    forward_psth,
    predict_poisson_batch,
    with_forward,
)
from nlbsuite.adapter import ModelAdapter, ModelConfig, ModelInfo
from nlbsuite.data import PhaseData, Rates
from nlbsuite.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from sklearn.linear_model import Ridge

#: NLB's (latent dim, ridge alpha for held-in rates, GLM alpha for held-out rates),
#: run_gpfa.py ``default_dict``.
NLB_GPFA_PARAMS: dict[str, tuple[int, float, float]] = {
    "mc_maze": (52, 0.01, 0.0),
    "mc_rtt": (36, 0.0, 0.0),
    "area2_bump": (22, 0.0001, 0.0),
    "dmfc_rsg": (32, 0.0001, 0.0),
    "mc_maze_large": (44, 0.01, 0.0),
    "mc_maze_medium": (28, 0.0, 0.0),
    "mc_maze_small": (18, 0.01, 0.0),
}
#: Datasets without an NLB setting (our choice, not NLB's).
DEFAULT_GPFA_PARAMS: tuple[int, float, float] = (8, 0.01, 0.0)
RECTIFY_MIN = 1e-10


@dataclass
class GPFAConfig(ModelConfig):
    """``latent_dim`` / ``ridge_alpha`` / ``glm_alpha``: None takes NLB's value for the
    dataset (else :data:`DEFAULT_GPFA_PARAMS`). The ``em_*``, ``tau_init_ms``, ``eps_init``
    and ``min_var_frac`` fields are elephant's GPFA settings (its defaults)."""

    latent_dim: int | None = None
    ridge_alpha: float | None = None
    glm_alpha: float | None = None
    em_max_iters: int = 500
    em_tol: float = 1e-8
    tau_init_ms: float = 100.0
    eps_init: float = 1e-3
    min_var_frac: float = 0.01
    max_iter: int = 2000


def sqrt_sequences(spikes: np.ndarray) -> np.ndarray:
    """Elephant's GPFA input for (trial, time, neuron) counts: a record array with one
    ``(T, y)`` per trial, y the (neuron, time) square-rooted counts."""
    seqs = np.empty(len(spikes), dtype=[("T", int), ("y", object)])
    for i, trial in enumerate(spikes):
        seqs[i] = (trial.shape[0], np.sqrt(trial.T))
    return seqs


@contextlib.contextmanager
def _quiet_elephant() -> Iterator[None]:
    """Elephant's EM with a progress bar (shown on a terminal) and without its prints."""
    from elephant.gpfa import gpfa_core
    from tqdm import trange

    bar = functools.partial(trange, leave=False, disable=None)
    original = gpfa_core.trange
    gpfa_core.trange = lambda *args, disable=None, **kw: bar(*args, **kw)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        gpfa_core.trange = original


@dataclass
class GPFAFit:
    """Fitted elephant GPFA: its parameter dict and the neurons it kept (those that spiked)."""

    params: dict[str, Any]
    kept: np.ndarray

    def latents(self, spikes: np.ndarray) -> np.ndarray:
        """Orthonormalised posterior-mean latents, (trial, time, latent), of (trial, time,
        neuron) counts."""
        from elephant.gpfa import gpfa_core

        seqs = sqrt_sequences(spikes[:, :, self.kept])
        seqs, _ = gpfa_core.exact_inference_with_ll(seqs, self.params, get_ll=False)
        _, seqs = gpfa_core.orthonormalize(self.params, seqs)
        return np.stack([x.T for x in seqs["latent_variable_orth"]])


def fit_gpfa(spikes: np.ndarray, bin_width_ms: float, cfg: GPFAConfig, latent_dim: int) -> GPFAFit:
    """Fit elephant's GPFA to (trial, time, neuron) counts, as ``GPFA(bin_size, x_dim).fit``
    does on the matching spike trains (same neuron filtering, same checks, same EM)."""
    from elephant.gpfa import gpfa_core

    seqs = sqrt_sequences(spikes)
    kept = np.asarray(spikes.sum(axis=(0, 1)) > 0)
    for seq in seqs:
        seq["y"] = seq["y"][kept]
    y_all = np.hstack(seqs["y"])
    if np.linalg.matrix_rank(np.cov(y_all)) < y_all.shape[0]:
        raise UserError(
            "gpfa: the held-in spikes' covariance is rank deficient (repeated neurons or too "
            f"few bins: {y_all.shape[1]} bins for {y_all.shape[0]} neurons)"
        )
    with _quiet_elephant():
        params, _ = gpfa_core.fit(
            seqs_train=seqs,
            x_dim=latent_dim,
            bin_width=float(bin_width_ms),
            min_var_frac=cfg.min_var_frac,
            em_max_iters=cfg.em_max_iters,
            em_tol=cfg.em_tol,
            tau_init=cfg.tau_init_ms,
            eps_init=cfg.eps_init,
        )
    return GPFAFit(params, kept)


def fit_rectified_ridge(x: np.ndarray, y: np.ndarray, alpha: float) -> Ridge:
    """Ridge regression from ``x`` (samples, feature) to ``y`` (samples, output)."""
    from sklearn.linear_model import Ridge

    return Ridge(alpha=alpha).fit(x, y)


def predict_rectified(ridge: Ridge, x: np.ndarray) -> np.ndarray:
    """Ridge predictions rectified at 1e-10 (NLB's ``fit_rectlin``), (samples, output)."""
    return np.maximum(ridge.predict(x), RECTIFY_MIN)


class GPFA(ModelAdapter):
    """GPFA latents + rectified ridge (held-in) + Poisson GLMs (held-out): NLB'21's GPFA."""

    info = ModelInfo(
        name="gpfa",
        citation="Yu et al. 2009, J Neurophysiol (GPFA); Pei et al. 2021, NLB'21",
        url="https://github.com/neurallatents/nlb_tools/tree/main/examples/baselines/gpfa",
        description="GPFA (elephant) latents -> rectified ridge held-in rates -> Poisson GLMs",
    )
    config_class = GPFAConfig
    presets: ClassVar = {
        "smoke": {"latent_dim": 3, "em_max_iters": 10},
        "cpu": {"em_max_iters": 100},
        "paper": {},
    }

    def settings(self, dataset: str) -> tuple[int, float, float]:
        """(latent dim, ridge alpha, GLM alpha): the config's, else NLB's for ``dataset``."""
        cfg = self.config
        assert isinstance(cfg, GPFAConfig)
        dim, ridge, glm = NLB_GPFA_PARAMS.get(dataset, DEFAULT_GPFA_PARAMS)
        return (
            dim if cfg.latent_dim is None else cfg.latent_dim,
            ridge if cfg.ridge_alpha is None else cfg.ridge_alpha,
            glm if cfg.glm_alpha is None else cfg.glm_alpha,
        )

    def fit(self, data: PhaseData) -> None:
        cfg = self.config
        assert isinstance(cfg, GPFAConfig)
        dim, ridge_alpha, glm_alpha = self.settings(data.dataset)
        self.extras = {"latent_dim": dim, "ridge_alpha": ridge_alpha, "glm_alpha": glm_alpha}
        np.random.seed(self.seed % 2**32)  # elephant cuts trials into segments at random
        self._gpfa = fit_gpfa(data.train_spikes_heldin, data.bin_width_ms, cfg, dim)
        latents = self._gpfa.latents(data.train_spikes_heldin).reshape(-1, dim)
        self._ridge = fit_rectified_ridge(
            latents, data.train_spikes_heldin.reshape(-1, data.n_heldin), ridge_alpha
        )
        heldin = predict_rectified(self._ridge, latents)
        y = data.train_spikes_heldout.reshape(-1, data.n_heldout)
        self._glms = fit_poisson_batch(heldin, y, glm_alpha, max_iter=cfg.max_iter)
        n_kept = int(self._gpfa.kept.sum())
        self._n_params = (
            n_kept * (dim + 2) + 2 * dim + (dim + 1) * data.n_heldin
        ) + data.n_heldout * (data.n_heldin + 1)
        self._forward = forward_psth(data)
        self._n_params += 0 if self._forward is None else self._forward.size

    def predict(self, data: PhaseData) -> Rates:
        out = {}
        for part, spikes in (
            ("train", data.train_spikes_heldin),
            ("eval", data.eval_spikes_heldin),
        ):
            n_trials, n_bins, _ = spikes.shape
            latents = self._gpfa.latents(spikes).reshape(n_trials * n_bins, -1)
            heldin = predict_rectified(self._ridge, latents)
            heldout = predict_poisson_batch(self._glms, heldin)
            out[f"{part}_rates_heldin"] = heldin.reshape(n_trials, n_bins, -1)
            out[f"{part}_rates_heldout"] = heldout.reshape(n_trials, n_bins, -1)
        return with_forward(Rates(**out), self._forward, data)

    def n_parameters(self) -> int:
        return getattr(self, "_n_params", 0)
