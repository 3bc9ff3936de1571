"""The shared training loop and the sample-averaging rule, on tiny hand-made problems."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nlbsuite.training import (
    SAMPLE_AVERAGING,
    Schedule,
    average_rates,
    poisson_nll,
    ramp,
    split_trials,
    train,
)

torch = pytest.importorskip("torch")


def test_average_rates_is_the_mean_of_rates_not_of_log_rates() -> None:
    samples = [np.array([1.0, 4.0]), np.array([3.0, 0.25])]
    np.testing.assert_array_equal(average_rates(samples), [2.0, 2.125])
    geometric = np.exp(np.mean(np.log(samples), axis=0))
    assert np.all(average_rates(samples) >= geometric)  # Jensen: the log-rate mean is lower
    assert SAMPLE_AVERAGING == "mean of rates"
    torch_samples = (torch.tensor([1.0, 2.0], dtype=torch.float32) * k for k in (1, 2, 3))
    out = average_rates(torch_samples)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [2.0, 4.0])
    with pytest.raises(ValueError, match="no samples"):
        average_rates([])


def test_split_trials_is_seeded_sorted_and_disjoint() -> None:
    fit, valid = split_trials(40, 0.1, np.random.default_rng(0))
    assert len(valid) == 4 and len(fit) == 36
    assert np.all(np.diff(fit) > 0) and np.all(np.diff(valid) > 0)
    assert set(fit) | set(valid) == set(range(40)) and not set(fit) & set(valid)
    again = split_trials(40, 0.1, np.random.default_rng(0))
    np.testing.assert_array_equal(again[1], valid)
    assert not np.array_equal(split_trials(40, 0.1, np.random.default_rng(1))[1], valid)
    assert len(split_trials(9, 0.5, np.random.default_rng(0))[1]) == 0  # too few trials
    assert len(split_trials(40, 0.0, np.random.default_rng(0))[1]) == 0
    assert len(split_trials(12, 0.01, np.random.default_rng(0))[1]) == 1  # at least one


def test_ramp_and_validation_epochs() -> None:
    assert [ramp(e, 4) for e in (0, 2, 4, 9)] == [0.0, 0.5, 1.0, 1.0]
    assert ramp(0, 0) == 1.0
    every3 = Schedule(epochs=8, batch_size=1, validate_every=3)
    assert [e for e in range(8) if every3.validates_after(e)] == [2, 5, 7]  # + the last
    listed = Schedule(epochs=8, batch_size=1, validate_every={1, 4})
    assert [e for e in range(8) if listed.validates_after(e)] == [0, 3]
    assert poisson_nll(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0])) == pytest.approx(1.5)
    mask = torch.tensor([False, True])
    assert poisson_nll(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 0.0]), mask) == 2.0


def _problem(seed: int = 0):
    """Poisson regression: 64 trials of 3 features -> counts; a linear log-rate model."""
    g = torch.Generator().manual_seed(123)
    x = torch.randn(64, 3, generator=g)
    y = torch.poisson(torch.exp(x @ torch.tensor([0.5, -0.3, 0.2]) + 0.1), generator=g)
    torch.manual_seed(seed)
    net = torch.nn.Linear(3, 1)
    return x, y, net


def _fit(seed: int = 0, shuffle: str = "torch", **schedule_kw):
    x, y, net = _problem(seed)
    opt = torch.optim.SGD(net.parameters(), lr=0.05)
    fit_idx, valid_idx = split_trials(64, 0.25, np.random.default_rng(seed))
    seen: list[int] = []

    def loss_fn(batch, epoch):
        seen.extend(batch.tolist())
        log_rate = net(x[batch]).squeeze(-1)
        loss = torch.nn.functional.poisson_nll_loss(log_rate, y[batch], log_input=True)
        return loss, {"epoch": float(epoch)}

    def validate():
        with torch.no_grad():
            return poisson_nll(net(x[valid_idx]).squeeze(-1).exp(), y[valid_idx])

    gen = (
        torch.Generator().manual_seed(seed)
        if shuffle == "torch"
        else np.random.default_rng(seed)
    )
    kw = {"epochs": 12, "batch_size": 16, **schedule_kw}
    hist = train(net, opt, loss_fn, fit_idx, Schedule(**kw), shuffle=gen, validate=validate,
                 metric="valid_nll")  # fmt: skip
    return hist, net, fit_idx, seen


def test_train_learns_validates_and_records_history() -> None:
    hist, net, fit_idx, seen = _fit()
    assert hist.metric == "valid_nll" and len(hist.train["loss"]) == 12
    assert hist.train["epoch"] == [float(e) for e in range(12)]
    assert hist.train["loss"][-1] < hist.train["loss"][0]
    assert [e for e, _ in hist.valid] == list(range(12))
    best = min(v for _, v in hist.valid)
    assert hist.best_value == best and hist.valid[hist.best_epoch][1] == best
    assert sorted(seen) == sorted(np.tile(fit_idx, 12).tolist())  # each fit trial once/epoch
    assert not net.training and hist.restored_best and not hist.stopped_early


def test_train_is_reproducible_and_both_shuffles_work() -> None:
    a, net_a, _, seen_a = _fit(seed=3)
    b, net_b, _, seen_b = _fit(seed=3)
    assert a.valid == b.valid and seen_a == seen_b
    torch.testing.assert_close(net_a.weight, net_b.weight, rtol=0, atol=0)
    _, _, fit_idx, seen_c = _fit(seed=3, shuffle="numpy")
    assert sorted(seen_c) == sorted(np.tile(fit_idx, 12).tolist()) and seen_c != seen_a


def test_passes_multiply_the_steps_per_epoch() -> None:
    _, _, fit_idx, seen = _fit(epochs=2, passes=3)
    assert len(seen) == 2 * 3 * len(fit_idx)


def test_best_checkpoint_is_restored() -> None:
    x, _, net = _problem()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)  # weights change only by our hand
    values = iter([3.0, 1.0, 2.0, 5.0])
    weights = []

    def loss_fn(batch, epoch):
        with torch.no_grad():
            net.bias.fill_(float(epoch))
        weights.append(float(epoch))
        return net(x[batch]).sum() * 0.0

    hist = train(net, opt, loss_fn, np.arange(8), Schedule(epochs=4, batch_size=8),
                 shuffle=torch.Generator().manual_seed(0), validate=lambda: next(values))  # fmt: skip
    assert hist.best_epoch == 1 and hist.best_value == 1.0
    assert float(net.bias.detach()) == 1.0  # the weights after epoch 1
    values = iter([3.0, 1.0, 2.0, 5.0])
    hist = train(net, opt, loss_fn, np.arange(8),
                 Schedule(epochs=4, batch_size=8, restore_best=False),
                 shuffle=torch.Generator().manual_seed(0), validate=lambda: next(values))  # fmt: skip
    assert float(net.bias.detach()) == 3.0 and not hist.restored_best


def test_early_stopping_after_patience_epochs_without_improvement() -> None:
    x, _, net = _problem()
    opt = torch.optim.SGD(net.parameters(), lr=0.0)
    values = iter([5.0, 4.0, 4.5, 4.2, 4.1, 0.0, 0.0])
    hist = train(net, opt, lambda b, e: net(x[b]).sum() * 0.0, np.arange(8),
                 Schedule(epochs=7, batch_size=8, patience=3),
                 shuffle=torch.Generator().manual_seed(0), validate=lambda: next(values))  # fmt: skip
    assert hist.stopped_early and hist.best_epoch == 1
    assert len(hist.valid) == 5 and len(hist.train["loss"]) == 5  # stopped after epoch 4


def test_schedulers_step_per_step_per_epoch_or_on_plateau() -> None:
    x, _, net = _problem()

    def run(scheduler_factory, interval, epochs=3, values=None):
        opt = torch.optim.SGD(net.parameters(), lr=1.0)
        sched = scheduler_factory(opt)
        vals = iter(values or [1.0] * epochs)
        train(net, opt, lambda b, e: net(x[b]).sum() * 0.0, np.arange(8),
              Schedule(epochs=epochs, batch_size=4), shuffle=torch.Generator().manual_seed(0),
              validate=lambda: next(vals), scheduler=sched, scheduler_interval=interval)  # fmt: skip
        return opt.param_groups[0]["lr"]

    def half(opt):
        return torch.optim.lr_scheduler.ExponentialLR(opt, 0.5)

    assert run(half, "epoch") == 0.5**3
    assert run(half, "step") == 0.5**6  # 2 batches per epoch

    def plateau(opt):
        return torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.1, patience=0)

    assert math.isclose(run(plateau, "epoch", values=[1.0, 2.0, 3.0]), 0.01)
