"""NDT and STNDT adapters: smoke training on tiny Lorenz, determinism, and the pieces of the
models (context mask, masking, spatial attention, contrastive loss)."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from baselines.ndt import NDT, NDTConfig  # noqa: E402
from baselines.ndt.network import (  # noqa: E402
    NDTNet,
    context_mask,
    expand_spans,
    mask_batch,
    pad_inputs,
    span_probability,
)
from baselines.stndt import STNDT, STNDTConfig  # noqa: E402
from baselines.stndt.network import SpatialAttention, STNDTNet, info_nce  # noqa: E402
from nlbsuite.data import PhaseData  # noqa: E402
from nlbsuite.errors import UserError  # noqa: E402
from nlbsuite.testing import check_adapter  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module", params=[NDT, STNDT], ids=["ndt", "stndt"])
def smoke_model(request: pytest.FixtureRequest, tiny_lorenz: PhaseData) -> NDT:
    """The smoke model fitted by the conformance check (shapes, same seed same rates, other
    seed other rates, pickle, ...)."""
    return check_adapter(request.param, tiny_lorenz).model


def test_smoke_fit_learns_and_predicts(smoke_model: NDT, tiny_lorenz: PhaseData) -> None:
    hist = smoke_model.history
    # 29 fit trials in batches of 16: 2 steps per epoch, 60 steps -> 30 epochs.
    assert smoke_model.extras["steps_run"] == 60 and len(hist.train["loss"]) == 30
    assert np.mean(hist.train["loss"][-5:]) < np.mean(hist.train["loss"][:5])
    assert hist.valid[hist.valid.index(min(hist.valid, key=lambda v: v[1]))][0] == hist.best_epoch
    rates = smoke_model.predict(tiny_lorenz.model_input())
    rates.check(tiny_lorenz)
    assert all((a > 0).all() for a in rates.arrays().values())
    # Held-out rates follow the data's firing level (within a factor of 2).
    ratio = rates.train_rates_heldout.mean() / tiny_lorenz.train_spikes_heldout.mean()
    assert 0.5 < ratio < 2.0
    assert smoke_model.n_parameters() == sum(p.numel() for p in smoke_model._net.parameters())


def test_context_mask_limits_attention() -> None:
    mask = context_mask(6, forward=1, backward=2)
    allowed = mask == 0
    expected = torch.tensor(
        [[1 if -2 <= j - i <= 1 else 0 for j in range(6)] for i in range(6)], dtype=torch.bool
    )
    assert torch.equal(allowed, expected)
    assert torch.isinf(mask[~allowed]).all()
    assert (context_mask(5, -1, -1) == 0).all()


def test_masking_timestep_mode_masks_whole_bins_and_zeroes_them() -> None:
    gen = torch.Generator().manual_seed(0)
    spikes = torch.ones(64, 50, 7)
    inputs, masked = mask_batch(
        spikes, ratio=0.25, mode="timestep", token_ratio=1.0, random_ratio=0.5,
        max_span=1, expand_prob=0.0, generator=gen,
    )  # fmt: skip
    assert (masked == masked[:, :, :1]).all()  # a bin is masked for every neuron or none
    assert abs(masked[:, :, 0].float().mean().item() - 0.25) < 0.02
    assert (inputs[masked] == 0).all() and (inputs[~masked] == 1).all()
    assert (spikes == 1).all()  # the caller's batch is untouched


def test_masking_full_mode_token_and_random_shares() -> None:
    gen = torch.Generator().manual_seed(1)
    spikes = torch.full((200, 40, 10), 3.0)
    spikes[0, 0, 0] = 9.0  # random replacements are drawn from [0, max count)
    inputs, masked = mask_batch(
        spikes, ratio=0.5, mode="full", token_ratio=0.5, random_ratio=1.0,
        max_span=1, expand_prob=0.0, generator=gen,
    )  # fmt: skip
    assert abs(masked.float().mean().item() - 0.5) < 0.01
    zeroed = masked & (inputs == 0)
    # Half the masked entries are zeroed; the rest random in [0, 9) (a few draw 0 or 3).
    assert abs(zeroed.sum().item() / masked.sum().item() - 0.5 - 0.5 / 9) < 0.02
    assert inputs[masked].max() <= 8 and (inputs[~masked] != 0).all()


def test_span_masking_widens_masked_bins_and_keeps_the_ratio() -> None:
    mask = torch.zeros(1, 9, 1, dtype=torch.bool)
    mask[0, 4, 0] = True
    assert expand_spans(mask, 3)[0, :, 0].tolist() == [i in (3, 4, 5) for i in range(9)]
    assert expand_spans(mask, 2)[0, :, 0].sum() == 2
    gen = torch.Generator().manual_seed(0)
    _, masked = mask_batch(
        torch.ones(400, 60, 2), ratio=0.2, mode="timestep", token_ratio=1.0, random_ratio=0.0,
        max_span=3, expand_prob=1.0, generator=gen,
    )  # fmt: skip
    assert 0.12 < masked.float().mean().item() < 0.22  # spans overlap a little
    assert [span_probability(s, 10, 20) for s in (0, 10, 15, 20, 99)] == [0, 0, 0.5, 1, 1]


def test_pad_inputs_zeroes_heldout_and_forward() -> None:
    x = torch.arange(12.0).reshape(1, 3, 4)
    out = pad_inputs(x, n_heldout=2, n_forward=1)
    assert out.shape == (1, 4, 6)
    assert torch.equal(out[:, :3, :4], x) and out[:, 3].abs().sum() == 0
    assert out[:, :, 4:].abs().sum() == 0


def test_ndt_attention_context_is_respected() -> None:
    """With no look-ahead, an output bin does not depend on later input bins."""
    torch.manual_seed(0)
    cfg = NDTConfig(n_layers=2, context_forward=0, context_backward=-1, dropout=0.0,
                    dropout_rates=0.0, dropout_embedding=0.0)  # fmt: skip
    net = NDTNet(n_neurons=6, n_bins=10, cfg=cfg).eval()
    x = torch.rand(2, 10, 6)
    y = x.clone()
    y[:, 6:] += 1.0
    assert torch.allclose(net(x)[:, :6], net(y)[:, :6], atol=1e-6)
    assert not torch.allclose(net(x)[:, 6:], net(y)[:, 6:])
    assert net.width == 6 and NDTNet(7, 10, cfg).width == 8  # padded to the heads


def test_spatial_attention_weights_are_row_stochastic() -> None:
    torch.manual_seed(0)
    attn = SpatialAttention(dim=25, n_heads=2)  # 25 time bins: heads of 13 features
    w = attn(torch.randn(3, 7, 25))
    assert w.shape == (3, 7, 7)
    torch.testing.assert_close(w.sum(-1), torch.ones(3, 7))
    assert (w >= 0).all()


def test_stndt_mixes_neurons_within_a_bin() -> None:
    """Unlike NDT with no temporal context, STNDT's output for a neuron depends on other
    neurons' input in the same bin through spatial attention as well."""
    torch.manual_seed(0)
    cfg = STNDTConfig(n_layers=1, context_forward=0, context_backward=0, dropout=0.0,
                      dropout_rates=0.0, dropout_embedding=0.0)  # fmt: skip
    net = STNDTNet(n_neurons=6, n_bins=8, cfg=cfg).eval()
    x = torch.rand(2, 8, 6)
    y = x.clone()
    y[:, 5, :] += 1.0  # change bin 5 only
    # The spatial stream sees whole time courses, so other bins change too.
    assert not torch.allclose(net(x)[:, 2], net(y)[:, 2])


def test_info_nce_matches_hand_computation() -> None:
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    b = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # Row 0 (a0): positive b0 (cos 1), negatives a1, b1 (cos 0); all rows alike.
    t = 0.5
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2.0))
    assert info_nce(a, b, t).item() == pytest.approx(expected, rel=1e-6)
    # Swapped positives are much worse.
    assert info_nce(a, b.flip(0), t).item() > expected + 1.0


def test_stndt_contrastive_loss_is_weighted_and_positive(tiny_lorenz: PhaseData) -> None:
    cfg = STNDTConfig(n_layers=1, ff_dim=8)
    net = STNDTNet(30, 25, cfg)
    gen = torch.Generator().manual_seed(0)
    heldin = torch.as_tensor(tiny_lorenz.train_spikes_heldin[:8], dtype=torch.float32)
    loss = net.auxiliary_loss(heldin, gen)
    assert loss.item() > 0
    net.cfg = dataclasses.replace(cfg, contrast_weight=0.0)
    assert net.auxiliary_loss(heldin, gen).item() == 0.0
    ndt = NDTNet(30, 25, NDTConfig(n_layers=1))
    assert ndt.auxiliary_loss(heldin, gen).item() == 0.0


def test_presets_and_bad_config(tiny_lorenz: PhaseData) -> None:
    paper = NDT.make_config("paper")
    assert (paper.n_layers, paper.n_steps, paper.mask_ratio, paper.weight_decay) == (
        4, 50501, 0.25, 5e-5,
    )  # fmt: skip
    st = STNDT.make_config("paper")
    assert (st.mask_mode, st.warmup_steps, st.contrast_weight, st.learnable_position) == (
        "full", 5000, 0.1, False,
    )  # fmt: skip
    with pytest.raises(UserError, match="mask_mode='spans'"):
        NDT(NDTConfig(mask_mode="spans")).fit(tiny_lorenz.model_input())
    with pytest.raises(UserError, match="call fit"):
        STNDT().predict(tiny_lorenz.model_input())
