"""mean_rate: the conformance check and its rates (each neuron's mean train count)."""

from __future__ import annotations

import numpy as np

from baselines.mean_rate import MeanRate
from nlbsuite.data import PhaseData
from nlbsuite.testing import check_adapter


def test_mean_rate_conforms_and_predicts_each_neurons_mean_count(tiny_lorenz: PhaseData) -> None:
    rates = check_adapter(MeanRate, tiny_lorenz).rates
    full = tiny_lorenz.train_spikes_full()
    mean = full.mean(axis=(0, 1))
    n_in = tiny_lorenz.n_heldin
    np.testing.assert_allclose(rates.eval_rates_heldout[3, 7], mean[n_in:], rtol=1e-6)
    np.testing.assert_allclose(rates.train_rates_heldin[0, 0], mean[:n_in], rtol=1e-6)
