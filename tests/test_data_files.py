import h5py
import numpy as np
import pytest

from nlbsuite.data import Rates, phase_data_from_h5
from nlbsuite.errors import UserError


def write_tensors(path, data, **extra):
    with h5py.File(path, "w") as f:
        for key in ("train_spikes_heldin", "train_spikes_heldout", "train_spikes_heldin_forward",
                    "train_spikes_heldout_forward", "eval_spikes_heldin"):
            f.create_dataset(key, data=getattr(data, key).astype("float32"))
        f.create_dataset("eval_spikes_heldout", data=data.target.eval_spikes_heldout)
        for key, value in extra.items():
            f.create_dataset(key, data=value)


def test_tensor_file_round_trip(tmp_path, tiny_lorenz):
    path = tmp_path / "mc_rtt_val_tensors.h5"
    write_tensors(path, tiny_lorenz)
    data = phase_data_from_h5(path)
    assert (data.dataset, data.phase, data.bin_width_ms) == ("mc_rtt", "val", 5)
    np.testing.assert_array_equal(data.train_spikes_heldin, tiny_lorenz.train_spikes_heldin)
    np.testing.assert_array_equal(data.target.eval_spikes_heldout,
                                  tiny_lorenz.target.eval_spikes_heldout)
    assert data.n_forward == tiny_lorenz.n_forward


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "file is empty"), (b"not hdf5 at all", "not a readable HDF5 file")],
)
def test_bad_files(tmp_path, content, message):
    path = tmp_path / "x.h5"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message):
        phase_data_from_h5(path)


def test_missing_key_and_bad_dtype(tmp_path, tiny_lorenz):
    path = tmp_path / "t.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("train_spikes_heldin", data=tiny_lorenz.train_spikes_heldin)
    with pytest.raises(UserError, match="missing key 'train_spikes_heldout'"):
        phase_data_from_h5(path)
    write_tensors(path, tiny_lorenz)
    with h5py.File(path, "a") as f:
        f.create_dataset("train_behavior", data=np.array([b"a", b"b"]))
    with pytest.raises(UserError, match="train_behavior"):
        phase_data_from_h5(path)


def test_rates_from_full_splits_the_six_arrays():
    train = np.arange(2 * 5 * 4, dtype=float).reshape(2, 5, 4)
    evals = np.arange(3 * 7 * 4, dtype=float).reshape(3, 7, 4)
    rates = Rates.from_full(train, evals, n_heldin=3, n_bins=5)
    assert rates.train_rates_heldin.shape == (2, 5, 3)
    assert rates.train_rates_heldout.shape == (2, 5, 1)
    assert rates.eval_rates_heldout_forward.shape == (3, 2, 1)
    assert rates.eval_rates_heldin_forward[0, 0, 0] == evals[0, 5, 0]
