import numpy as np
import scipy.signal as signal

from baselines.smoothing import NLB_SMOOTHING_PARAMS, Smoothing, smooth_spikes
from nlbsuite.evaluation import evaluate


def test_smoothing_equals_nlb_per_channel_np_convolve():
    rng = np.random.default_rng(0)
    spikes = rng.poisson(0.5, size=(3, 80, 4)).astype(float)
    for sd, bin_ms in [(50, 5), (60, 20), (30, 5)]:
        window = signal.windows.gaussian(int(6 * sd / bin_ms), int(sd / bin_ms), sym=True)
        window /= window.sum()
        expected = np.apply_along_axis(lambda x, w=window: np.convolve(x, w, "same"), 1, spikes)
        np.testing.assert_allclose(smooth_spikes(spikes, sd, bin_ms), expected, atol=1e-12)


def test_nlb_parameters():
    assert NLB_SMOOTHING_PARAMS["mc_maze"] == (50, 0.01)
    assert NLB_SMOOTHING_PARAMS["dmfc_rsg"] == (60, 0.001)
    assert NLB_SMOOTHING_PARAMS["mc_maze_small"] == (60, 0.1)


def test_smoothing_beats_the_null_on_lorenz(tiny_lorenz):
    model = Smoothing()
    model.fit(tiny_lorenz.model_input())
    rates = model.predict(tiny_lorenz.model_input())
    assert rates.eval_rates_heldout.shape == tiny_lorenz.target.eval_spikes_heldout.shape
    assert rates.eval_rates_heldin_forward.shape == (8, 5, 22)
    scores = evaluate(tiny_lorenz, rates)
    assert 0.05 < scores["co-bps"] < scores["ceiling co-bps"]
    assert model.n_parameters() == 8 * 23 + 5 * 30
