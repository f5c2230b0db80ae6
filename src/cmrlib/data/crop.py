"""Cropping the image to the heart (Lee et al. 2025 §4.7; chapters 07–08).

One box size for all: the largest heart in the training set (its in-plane bounding box over the whole stack,
in pixels) plus a buffer on each side. The paper's buffer is 5 pixels at UK Biobank's 1.8 mm; here it is the
same distance, 9 mm, in each profile's pixels (5 px would be 18 mm at the course profile's 3.6 mm and make the
box reach the body wall). Each volume's box is centred on its heart's bounding box (from the label for
ground-truth cropping, from a first model's prediction in the cascade) and shifted, never shrunk, to lie inside
the image. A network sees the box's contents z-scored on their own (nnU-Net normalises each training image, and
a model trained on crops sees only crops) and padded at the bottom and right with background up to a multiple
of its stride; the padding is never part of the box. Predictions on crops are pasted back into an empty
full-size label map, so that every metric is computed in the original image space.

Cascade fallback: when the first-stage model finds no heart in a volume, the box is centred on the image
(the synthetic and most real short-axis stacks are planned with the heart near the centre), and the volume is
flagged so the chapter can count such cases.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cmrlib.data.pipeline import Data

PAPER_BUFFER_PX = 5    # Lee et al. 2025 §4.7: the buffer in pixels
PAPER_SPACING_MM = 1.8  # UK Biobank's in-plane spacing
BUFFER_MM = round(PAPER_BUFFER_PX * PAPER_SPACING_MM, 6)   # 9 mm: the paper's buffer in millimetres
BUFFER = PAPER_BUFFER_PX   # pixels, where no spacing is given


def buffer_px(spacing_mm: float, buffer_mm: float = BUFFER_MM) -> int:
    """The buffer in pixels of ``spacing_mm``: ``buffer_mm`` (9 mm by default), rounded up, at least one pixel."""
    return max(1, math.ceil(float(buffer_mm) / float(spacing_mm) - 1e-9))


@dataclass(frozen=True)
class Box:
    y0: int
    x0: int
    h: int
    w: int

    @property
    def slices(self):
        return slice(self.y0, self.y0 + self.h), slice(self.x0, self.x0 + self.w)


def heart_extent(label: np.ndarray) -> tuple[int, int]:
    """In-plane height and width (pixels) of the heart's bounding box over a (Z, H, W) stack."""
    ys, xs = np.nonzero(np.asarray(label).reshape(-1, *label.shape[-2:]).any(axis=0))
    if len(ys) == 0:
        return 0, 0
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def box_size(labels, buffer: int = BUFFER) -> tuple[int, int]:
    """The one crop size: the largest heart extent over the given stacks plus ``buffer`` on each side."""
    ext = np.array([heart_extent(lab) for lab in labels])
    return int(ext[:, 0].max() + 2 * buffer), int(ext[:, 1].max() + 2 * buffer)


def crop_box_size(labels, spacing_mm: float, image_shape, buffer_mm: float = BUFFER_MM) -> tuple[int, int]:
    """Lee et al. 2025 §4.7's one box size for a set of label stacks: the largest heart plus the buffer
    (:func:`buffer_px`, 9 mm by default) on each side, capped at the image (``image_shape``: its last two
    dimensions)."""
    h, w = box_size(labels, buffer_px(spacing_mm, buffer_mm))
    H, W = tuple(image_shape)[-2:]
    return min(h, H), min(w, W)


def box_for(mask: np.ndarray, size: tuple[int, int]) -> tuple[Box, bool]:
    """A ``size`` box centred on the heart of a (Z, H, W) or (H, W) mask, moved inside the image.
    Returns (box, found); an empty mask gives the image-centred fallback box and found=False."""
    H, W = mask.shape[-2:]
    h, w = min(size[0], H), min(size[1], W)
    flat = np.asarray(mask).reshape(-1, H, W).any(axis=0)
    ys, xs = np.nonzero(flat)
    found = len(ys) > 0
    cy, cx = ((ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2) if found else ((H - 1) / 2, (W - 1) / 2)
    y0 = int(np.clip(round(cy - (h - 1) / 2), 0, H - h))
    x0 = int(np.clip(round(cx - (w - 1) / 2), 0, W - w))
    return Box(y0, x0, h, w), found


def crop(volume: np.ndarray, box: Box) -> np.ndarray:
    sy, sx = box.slices
    return volume[..., sy, sx]


def paste(cropped: np.ndarray, box: Box, shape) -> np.ndarray:
    """Place a cropped label map back into an empty (background) map of ``shape``."""
    out = np.zeros(shape, dtype=cropped.dtype)
    sy, sx = box.slices
    out[..., sy, sx] = cropped
    return out


def fit(volume: np.ndarray, size: tuple[int, int], value=0) -> np.ndarray:
    """Pad a crop that is smaller than ``size`` (image smaller than the box) at the bottom/right."""
    h, w = volume.shape[-2:]
    if (h, w) == tuple(size):
        return volume
    pad = [(0, 0)] * (volume.ndim - 2) + [(0, size[0] - h), (0, size[1] - w)]
    return np.pad(volume, pad, constant_values=value)


def network_size(size: tuple[int, int], multiple: int) -> tuple[int, int]:
    """The input size a network with total stride ``multiple`` takes for boxes of ``size``: each side rounded
    up to the multiple (the extra is padding, not image)."""
    up = lambda n: -(-int(n) // multiple) * multiple  # noqa: E731
    return up(size[0]), up(size[1])


def normalise(images: np.ndarray) -> np.ndarray:
    """Z-score a crop on its own pixels (float32)."""
    x = np.asarray(images, dtype=np.float32)
    return (x - x.mean()) / (x.std() + 1e-6)


def crop_image(volume: np.ndarray, box: Box, size: tuple[int, int]) -> np.ndarray:
    """What a crop model sees: the box's pixels, z-scored on their own, padded to ``size`` with the crop's
    minimum (background)."""
    x = normalise(crop(volume, box))
    return fit(x, size, value=float(x.min()))


def crop_to_box(volume: np.ndarray, box: Box, size: tuple[int, int], value=None) -> np.ndarray:
    """``volume`` cropped to ``box`` and padded to ``size`` where the image is smaller than the box, with
    ``value`` (by default the volume's minimum: background for images; pass 0 for label maps)."""
    return fit(crop(volume, box), size, value=volume.min() if value is None else value)


def cascade_predict(predict_full, predict_crop, images: np.ndarray, size: tuple[int, int],
                    net_size: tuple[int, int] | None = None):
    """Lee et al. 2025 Fig. 1: full-image prediction → its heart box → crop → crop model → prediction pasted back.

    ``size`` is the box, ``net_size`` the padded input of the crop model (default: the box).
    ``predict_full`` / ``predict_crop`` map (Z, h, w) images to (Z, h, w) labels. Returns (labels in the
    original image space, box, found) where found is False when the first stage saw no heart (fallback box)."""
    first = predict_full(images)
    box, found = box_for(first > 0, size)
    pred = predict_crop(crop_image(images, box, net_size or size))[..., : box.h, : box.w]
    return paste(pred, box, images.shape), box, found


_BOX_SIZES: dict[tuple, tuple[int, int]] = {}    # (cache, training subjects, buffer, shape) → box size


def crop_size(data: Data) -> tuple[int, int]:
    """The box of Lee et al. 2025, §4.7: the largest training heart plus the buffer on each side (the profile's
    ``crop.buffer_mm``, 9 mm by default: the paper's 5 px at 1.8 mm; :func:`cmrlib.data.crop.buffer_px`), capped at
    the image size. The network's input is the box padded with background up to a multiple of its stride
    (:func:`crop_input_size`); with ``crop.fill: grow`` the box itself is grown to that size instead, so the
    network sees image where it would see padding (chapter 07 measures the difference).

    The largest heart is measured once per cache and training set (a crop run asks for its box several
    times: its run key, its training slices, its evaluation), not once per call."""
    crop = data.params.get("crop", {})
    train = sorted(data.ids("train"))
    key = (str(data.cache.path), tuple(train), crop.get("buffer_mm", BUFFER_MM), tuple(data.cache.images.shape))
    if key not in _BOX_SIZES:
        vols = [int(i) for i in np.flatnonzero(data.cache.volumes.subject_id.isin(set(train)).to_numpy())]
        _BOX_SIZES[key] = crop_box_size((data.cache.volume(i)[1] for i in vols), data.cache.volumes.spacing_y.iloc[0],
                                        data.cache.images.shape, key[2])
    size = _BOX_SIZES[key]
    if crop.get("fill", "pad") == "grow":
        h, w = crop_input_size(data, size)
        H, W = data.cache.images.shape[-2:]
        size = (min(h, H), min(w, W))
    return size


def crop_input_size(data: Data, size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The crop model's input: the box padded up to a multiple of the profile network's total stride,
    2^(levels − 1)."""
    return network_size(size or crop_size(data), 2 ** (len(data.params["training"]["channels"]) - 1))
