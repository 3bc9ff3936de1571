"""The declarative dataset specs carry exactly nlb_tools 0.0.4's PARAMS values."""

from __future__ import annotations

import pytest

pytest.importorskip("nlb_tools")

from nlbsuite.nlb.specs import DATASETS, Window

pytestmark = pytest.mark.oracle


def _as_params(window: Window) -> dict:
    out: dict = {}
    if window.align_field is not None:
        out["align_field"] = window.align_field
    if window.align_range is not None:
        out["align_range"] = window.align_range
    if window.start_field != "start_time":
        out["start_field"] = window.start_field
    if window.end_field != "end_time":
        out["end_field"] = window.end_field
    if window.allow_overlap:
        out["allow_overlap"] = True
    return out


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_spec_matches_params(name: str) -> None:
    from nlb_tools.make_tensors import PARAMS

    params, spec = PARAMS[name], DATASETS[name]
    assert set(DATASETS) == set(PARAMS)
    assert _as_params(spec.input_window) == params["make_params"]
    assert _as_params(spec.target_window) == params["eval_make_params"]
    assert spec.behavior_source == params["behavior_source"]
    fields = params["behavior_field"]
    assert list(spec.behavior_fields) == (fields if isinstance(fields, list) else [fields])
    assert spec.lag_ms == params.get("lag")
    assert spec.fp_len_ms == params["fp_len"]
    tensor = params.get("eval_tensor_params", {})
    assert spec.eval_seg_len_ms == tensor.get("seg_len")
    assert spec.eval_pad == tensor.get("pad", "back")
    assert (spec.decode_mask_field is not None) == ("decode_masks" in params)
    assert (spec.outlier_field is not None) == ("behavior_mask" in params)
    assert (spec.jitter is not None) == ("jitter" in params)
    psth = params.get("psth_params")
    if psth is None:
        assert spec.psth is None
        return
    assert list(spec.psth.cond_fields) == psth["cond_fields"]
    assert _as_params(spec.psth.window) == psth["make_params"]
    assert spec.psth.kern_sd_ms == psth["kern_sd"]
    assert spec.psth.pad == psth.get("pad", "back")
    assert spec.psth.seg_len_ms == psth.get("seg_len")
    assert spec.psth.skip_outliers == ("skip_mask" in psth)
