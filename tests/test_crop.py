import numpy as np
import pytest

from cmrlib.data.crop import (
    BUFFER,
    Box,
    box_for,
    box_size,
    buffer_px,
    cascade_predict,
    crop,
    crop_image,
    heart_extent,
    network_size,
    paste,
)


def _stack(shape=(3, 40, 50)):
    lab = np.zeros(shape, np.uint8)
    lab[1, 10:20, 12:30] = 1     # 10 × 18
    lab[2, 15:22, 20:25] = 3     # union with slice 1: rows 10–21 (12), cols 12–29 (18)
    return lab


def test_extent_and_size_with_buffer():
    assert heart_extent(_stack()) == (12, 18)
    small = np.zeros((2, 40, 50), np.uint8); small[0, 5:9, 5:8] = 2
    assert box_size([_stack(), small]) == (12 + 2 * BUFFER, 18 + 2 * BUFFER)
    assert box_size([small], buffer=0) == (4, 3)


def test_box_is_centred_and_fixed_size():
    box, found = box_for(_stack() > 0, (22, 28))
    assert found and (box.h, box.w) == (22, 28)
    assert box.y0 == 5 and box.x0 == 7          # centre (15.5, 20.5) minus half the size
    inside = crop(_stack(), box)
    assert inside.sum() == _stack().sum()       # the whole heart is in the box


def test_box_is_moved_inside_the_image_at_borders():
    lab = np.zeros((1, 40, 50), np.uint8); lab[0, 0:4, 46:50] = 1
    box, _ = box_for(lab > 0, (20, 20))
    assert box.y0 == 0 and box.x0 == 30 and box.y0 + box.h <= 40 and box.x0 + box.w <= 50
    big, _ = box_for(lab > 0, (60, 70))          # larger than the image: clipped to the image
    assert (big.h, big.w) == (40, 50) and (big.y0, big.x0) == (0, 0)


def test_crop_paste_round_trip_is_exact():
    lab = _stack()
    box, _ = box_for(lab > 0, (22, 28))
    back = paste(crop(lab, box), box, lab.shape)
    np.testing.assert_array_equal(back, lab)
    assert Box(1, 2, 3, 4).slices == (slice(1, 4), slice(2, 6))


def test_cascade_with_empty_first_stage_uses_centred_fallback():
    img = np.random.default_rng(0).random((2, 40, 50)).astype(np.float32)
    seen = {}

    def full(x):
        return np.zeros(x.shape, np.uint8)

    def crop_model(x):
        seen["shape"] = x.shape
        return np.ones(x.shape, np.uint8)

    pred, box, found = cascade_predict(full, crop_model, img, (20, 30))
    assert not found and seen["shape"] == (2, 20, 30)
    assert (box.y0, box.x0) == (10, 10)                       # centred: (40-20)/2, (50-30)/2
    assert pred.shape == img.shape and pred.sum() == 2 * 20 * 30 and pred[:, box.slices[0], box.slices[1]].all()


def test_cascade_follows_the_first_stage_heart():
    img = np.zeros((1, 40, 50), np.float32)
    first = np.zeros((1, 40, 50), np.uint8); first[0, 30:36, 40:46] = 1
    pred, box, found = cascade_predict(lambda x: first, lambda x: (x * 0 + 2).astype(np.uint8), img, (10, 10))
    assert found and box.y0 <= 30 and box.y0 + 10 >= 36 and box.x0 <= 40 and box.x0 + 10 >= 46
    assert (pred == 2).sum() == 100


def test_largest_component_removes_islands_per_structure():
    from cmrlib.training.postprocess import postprocess
    lab = np.zeros((4, 20, 20), np.uint8)
    lab[1:3, 2:8, 2:8] = 1          # the heart's blood pool, two slices
    lab[1:3, 8:10, 2:8] = 3         # RV beside it: touches class 1 but is another class
    lab[0, 17:19, 17:19] = 1        # a stray island of class 1 far away
    lab[3, 15, 2] = 2               # a single-component class stays
    out = postprocess(lab)
    assert out[0, 17:19, 17:19].sum() == 0
    assert (out[1:3, 2:8, 2:8] == 1).all() and (out[1:3, 8:10, 2:8] == 3).all() and out[3, 15, 2] == 2
    assert (postprocess(lab, "none") == lab).all()
    with pytest.raises(ValueError, match="post-processing"):
        postprocess(lab, "biggest")


def test_components_connect_across_slices():
    from cmrlib.training.postprocess import largest_components
    lab = np.zeros((3, 10, 10), np.uint8)
    lab[0, 1:3, 1:3] = 1
    lab[1, 2:4, 2:4] = 1            # overlaps slice 0 diagonally: one 3-D component with it
    lab[2, 8, 8] = 1
    out = largest_components(lab)
    assert out[0].sum() == 4 and out[1].sum() == 4 and out[2].sum() == 0


def test_buffer_is_nine_mm_in_each_profiles_pixels():
    assert buffer_px(1.8) == 5 and buffer_px(3.6) == 3 and buffer_px(5.4) == 2 and buffer_px(2.7) == 4
    assert buffer_px(20.0) == 1


def test_crop_image_is_normalised_on_the_box_and_padded_outside_it():
    img = np.zeros((2, 40, 50), np.float32)
    img[:, 10:20, 10:25] = np.random.default_rng(0).random((2, 10, 15)) * 100 + 500
    box = Box(10, 10, 10, 15)
    x = crop_image(img, box, network_size((10, 15), 8))
    assert x.shape == (2, 16, 16)
    inner = x[:, :10, :15]
    assert abs(inner.mean()) < 1e-4 and abs(inner.std() - 1) < 1e-3      # z-scored on the box alone
    assert (x[:, 10:, :] == inner.min()).all() and (x[:, :, 15:] == inner.min()).all()


def test_cascade_pads_the_crop_to_the_network_size():
    img = np.random.default_rng(0).random((1, 40, 50)).astype(np.float32)
    first = np.zeros((1, 40, 50), np.uint8); first[0, 10:20, 10:20] = 1
    seen = {}

    def crop_model(x):
        seen["shape"] = x.shape
        return np.ones(x.shape, np.uint8)
    pred, box, _ = cascade_predict(lambda x: first, crop_model, img, (13, 13), (16, 16))
    assert seen["shape"] == (1, 16, 16) and (box.h, box.w) == (13, 13) and pred.sum() == 13 * 13


def test_crop_buffer_from_the_profile_sets_the_box_and_the_run(tiny_params):
    from cmrlib.data.crop import crop_size
    from cmrlib.data.pipeline import prepare_data, with_crop
    from cmrlib.runs.store import run_dir_for
    from cmrlib.training.methods import METHODS
    data = prepare_data(tiny_params, progress=False)
    wide = with_crop(data, 30.0)
    (h, w), (h2, w2) = crop_size(data), crop_size(wide)
    assert buffer_px(7.0, 30.0) == 5 and buffer_px(7.0) == 2
    assert (h2, w2) == (min(h + 6, 48), min(w + 6, 48))      # 3 more pixels on each side, capped at the image
    for name in ("baseline_crop_gt", "baseline_cascade"):
        assert run_dir_for(wide, name, METHODS[name]) != run_dir_for(data, name, METHODS[name])
    assert run_dir_for(wide, "baseline", METHODS["baseline"]) == run_dir_for(data, "baseline", METHODS["baseline"])


def test_a_grown_box_fills_the_network_input_with_image(tiny_params):
    from cmrlib.data.crop import crop_input_size, crop_size
    from cmrlib.data.pipeline import prepare_data, with_crop
    from cmrlib.runs.store import run_dir_for
    from cmrlib.training.methods import METHODS
    data = prepare_data(tiny_params, progress=False)
    grown = with_crop(data, fill="grow")
    box, net = crop_size(data), crop_input_size(data)
    assert crop_size(grown) == net == crop_input_size(grown)          # no padding left: the box is the input
    assert all(b <= n for b, n in zip(box, net))
    if box != net:                                                     # a different box is a different run
        assert run_dir_for(grown, "baseline_crop_gt", METHODS["baseline_crop_gt"]) != \
            run_dir_for(data, "baseline_crop_gt", METHODS["baseline_crop_gt"])
    assert with_crop(data, fill="grow").params["crop"].get("buffer_mm") == data.params.get("crop", {}).get("buffer_mm")
