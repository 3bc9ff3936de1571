"""Saved predictions: the arrays a run's report figures need, written beside its model."""

from __future__ import annotations

import numpy as np
import pytest

from nlbsuite.errors import UserError
from nlbsuite.predictions import load_predictions, prediction_arrays
from nlbsuite.runner import fit_predict, run


def test_run_saves_eval_rates_spikes_psth_inputs_and_truth(tmp_path, tiny_lorenz):
    rec = run("mean_rate", tiny_lorenz, results_dir=tmp_path / "results", log=None)
    saved = load_predictions((tmp_path / "results" / rec.artifact).with_suffix(".npz"))
    pred = fit_predict("mean_rate", tiny_lorenz).rates
    d, t = tiny_lorenz, tiny_lorenz.target
    np.testing.assert_allclose(
        saved["eval_rates"][..., d.n_heldin :], pred.eval_rates_heldout, rtol=1e-6
    )
    assert int(saved["n_heldin"]) == d.n_heldin == 22
    np.testing.assert_array_equal(saved["eval_spikes"][..., 22:], t.eval_spikes_heldout)
    np.testing.assert_array_equal(saved["eval_spikes"][..., :22], d.eval_spikes_heldin)
    np.testing.assert_array_equal(saved["psth"], t.psth.astype(np.float32))
    ptr, trials = saved["cond_ptr"], saved["cond_trials"]
    for c, idx in enumerate(t.eval_cond_idx):
        np.testing.assert_array_equal(trials[ptr[c] : ptr[c + 1]], idx)
        assert (saved["conditions"][idx] == c).all()
    np.testing.assert_allclose(
        saved["true_rates"][..., :22], d.truth.eval_rates_heldin, rtol=1e-6
    )
    assert saved["true_latents"].shape == (8, 20, 3)
    assert saved["eval_rates"].dtype == np.float32 and "latents" not in saved
    assert "velocity_pred" not in saved  # Lorenz has no behaviour


def test_model_latents_and_decoded_velocity(tiny_lorenz):
    class WithLatents:
        def latents(self, heldin):
            return heldin.sum(axis=2, keepdims=True)

    data = tiny_lorenz
    rng = np.random.default_rng(0)
    beh_train = rng.normal(size=(len(data.train_spikes_heldin), data.n_bins, 2))
    beh_eval = rng.normal(size=(len(data.eval_spikes_heldin), data.n_bins, 2))
    data = type(data)(**{**data.__dict__, "train_behavior": beh_train})
    data.target = type(data.target)(**{**data.target.__dict__, "eval_behavior": beh_eval})
    pred = fit_predict("mean_rate", data).rates
    out = prediction_arrays(data, pred, WithLatents())
    np.testing.assert_allclose(out["latents"][..., 0], data.eval_spikes_heldin.sum(axis=2))
    np.testing.assert_allclose(out["velocity_true"], beh_eval.astype(np.float32))
    # Constant rates carry no information: the decoder predicts the train mean.
    np.testing.assert_allclose(
        out["velocity_pred"], np.broadcast_to(beh_train.mean(axis=(0, 1)), beh_eval.shape),
        atol=1e-5,
    )


def test_unreadable_predictions_file_is_one_line(tmp_path):
    bad = tmp_path / "x.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(UserError, match=r"x\.npz: unreadable saved predictions"):
        load_predictions(bad)
