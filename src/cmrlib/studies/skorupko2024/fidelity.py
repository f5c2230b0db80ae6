"""How good are the synthetic slices? Three measures that need no downloaded weights (chapter 17).

- **Fréchet distance** between two sets of slices, on features of an encoder trained inside the pipeline: the
  protected-group classifier of the root-cause chapter (:func:`cmrlib.training.classifier.fit_classifier`), trained on real
  training slices at the generator's resolution, its last convolutional features averaged over space. The number
  is only comparable with other numbers from the same encoder: :func:`frechet_table` puts real-vs-real distances
  beside it. It is *not* an FID: the FID uses an Inception network trained on ImageNet, so its scale has nothing
  to do with this one.
- **Mask fidelity**: the baseline segmenter, trained on real slices only, segments each synthetic slice; the
  Dice against the mask that conditioned it. Reference: the same segmenter on real slices taken down to the
  generator's resolution and back (:func:`cmrlib.studies.skorupko2024.generative.at_resolution`).
- **Attribute fidelity**: the group classifier's share of synthetic slices it calls minority, beside its
  accuracy on real held-out slices; and for pairs that share mask and noise but not the attribute, how often the
  minority member scores higher.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from monai.networks.nets import Classifier
from scipy import linalg

from cmrlib.config import runs_dir
from cmrlib.data.pipeline import Data
from cmrlib.evaluation.metrics import dice
from cmrlib.files import save_atomic, stable_hash
from cmrlib.runs.store import require_stored
from cmrlib.studies.skorupko2024.generative import Generator, resize, sample
from cmrlib.training.classifier import CLASSIFIER, fit_classifier
from cmrlib.training.train import load_checkpoint, predict


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) of two feature sets (n, d): the Fréchet distance of the
    Gaussians fitted to them (the formula of the FID, without its Inception features)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or min(len(a), len(b)) < 2:
        raise ValueError(f"two feature sets (n ≥ 2, same d) needed, got shapes {a.shape} and {b.shape}")
    mu = a.mean(0) - b.mean(0)
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root, _ = linalg.sqrtm(ca @ cb, disp=False)
    return float(max(mu @ mu + np.trace(ca + cb - 2 * np.real(root)), 0.0))


class GroupEncoder:
    """The protected-group classifier (minority = 1) on slices at the generator's resolution, with its
    features for the Fréchet distance."""

    def __init__(self, net: torch.nn.Module, size: int):
        self.net, self.size = net, size

    @torch.no_grad()
    def features(self, images) -> np.ndarray:
        x = resize(images, self.size)
        return torch.cat([self.net.net(x[s:s + 256]).mean((2, 3)) for s in range(0, len(x), 256)]).numpy()

    @torch.no_grad()
    def p_minority(self, images) -> np.ndarray:
        x = resize(images, self.size)
        return torch.cat([torch.sigmoid(self.net(x[s:s + 256])[:, 0]) for s in range(0, len(x), 256)]).numpy()


def shows_heart(cache, idx: np.ndarray) -> np.ndarray:
    """Whether each cache slice of ``idx`` has any labelled structure."""
    return np.asarray(cache.labels[idx]).reshape(len(idx), -1).max(1) > 0


def subject_slices(data: Data, subject_ids, heart_only: bool = True, limit: int | None = None, seed: int = 0):
    """Images (float32) and labels of the subjects' slices (those showing the heart), at most ``limit`` of them,
    drawn with ``seed``."""
    idx = data.cache.slices_of(subject_ids)
    if heart_only:
        idx = idx[shows_heart(data.cache, idx)]
    if limit is not None and len(idx) > limit:
        idx = np.sort(np.random.default_rng(seed).choice(idx, limit, replace=False))
    return np.asarray(data.cache.images[idx], np.float32), np.asarray(data.cache.labels[idx])


def real_slices(data: Data, split: str, group: str, heart_only: bool = True, limit: int | None = None, seed: int = 0):
    """Images and labels of one group's slices in one split (slices showing the heart), at most ``limit`` of
    them, drawn with ``seed``."""
    ids = data.subjects.loc[(data.subjects.split == split) & (data.subjects[data.group_col] == group), "subject_id"]
    return subject_slices(data, ids, heart_only, limit, seed)


def real_sets(data: Data, n: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Real test slices showing the heart for the quality references: the minority's test subjects split in two
    halves (``minority A``, ``minority B``: a real-vs-real distance between different subjects) and the
    advantaged group (``majority``); each at most ``n`` slices."""
    te = data.subjects[data.subjects.split == "test"]
    ids = te.loc[te[data.group_col] == data.minority, "subject_id"].to_numpy()
    ids = np.random.default_rng(seed).permutation(ids)
    half = len(ids) // 2
    return {name: subject_slices(data, sub, limit=n, seed=seed)
            for name, sub in (("minority A", ids[:half]), ("minority B", ids[half:]),
                              ("majority", te.loc[te[data.group_col] == data.advantaged, "subject_id"].to_numpy()))}


def frechet_report(enc: "GroupEncoder", real: dict, generated: np.ndarray) -> pd.DataFrame:
    """The chapter's Fréchet distances: real vs real (different minority subjects: the floor a perfect generator
    would reach at these set sizes), between the real groups (the scale of a group difference), and the generated
    minority slices against either real group."""
    sets = {k: v[0] for k, v in real.items()} | {"generated": generated}
    pairs = [("minority A", "minority B"), ("minority A", "majority"), ("minority A", "generated"),
             ("majority", "generated")]
    t = frechet_table(enc, sets, pairs)
    t.insert(0, "comparison", ["real vs real, same group (reference)", "real, between groups",
                               "generated minority vs real minority", "generated minority vs real majority"])
    return t


def group_encoder(data: Data, size: int, steps: int, seed: int = 0) -> GroupEncoder:
    """The group classifier trained on the training split: every minority slice and as many majority slices,
    drawn with ``seed`` (balanced, as the root-cause probe). Kept in the run store
    (``group_encoder-<hash>/model.pt``, the hash over the cache, the training subjects and these settings), so
    that it is trained once, by chapter 17 or by its unit of work (:mod:`cmrlib.book.work`)."""
    key = stable_hash(["group_encoder", data.cache.path.name, sorted(data.ids("train")), data.group_col,
                       data.advantaged, data.minority, int(size), int(steps), int(seed)])
    path = runs_dir(data.params) / f"group_encoder-{key}" / "model.pt"
    mi, _ = real_slices(data, "train", data.minority, heart_only=False)
    if path.exists():
        net = Classifier(in_shape=(1, size, size), **CLASSIFIER)
        net.load_state_dict(load_checkpoint(path)["model"])
        return GroupEncoder(net.eval(), size)
    require_stored(path, "chapter 17's group classifier")
    ma, _ = real_slices(data, "train", data.advantaged, heart_only=False, limit=len(mi), seed=seed)
    x = resize(np.concatenate([ma, mi]), size)[:, 0].numpy()
    y = np.r_[np.zeros(len(ma)), np.ones(len(mi))]
    net = fit_classifier(x, y, steps=steps, seed=seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_atomic({"step": int(steps), "model": net.state_dict()}, path)
    return GroupEncoder(net, size)


def frechet_table(enc: GroupEncoder, sets: dict[str, np.ndarray], pairs) -> pd.DataFrame:
    """Fréchet distances between named slice sets for the (a, b) pairs given, with the set sizes."""
    feats = {k: enc.features(v) for k, v in sets.items()}
    return pd.DataFrame([dict(a=a, b=b, n_a=len(feats[a]), n_b=len(feats[b]), frechet=frechet_distance(feats[a], feats[b]))
                         for a, b in pairs])


def slice_dice(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per slice, the mean Dice over the three structures (a structure absent from both counts as 1)."""
    return np.array([np.mean([dice(p == k, l == k) for k in (1, 2, 3)]) for p, l in zip(pred, labels)])


def mask_fidelity(model: torch.nn.Module, sets: dict[str, tuple[np.ndarray, np.ndarray]]) -> pd.DataFrame:
    """Per named set of (images, masks): median and IQR of the per-slice Dice of ``model``'s label maps against
    the masks. Slices are segmented one by one, without the post-processing of a volume (its largest connected
    component would span unrelated slices)."""
    rows = []
    for name, (im, lab) in sets.items():
        d = slice_dice(predict(model, np.asarray(im, np.float32)), lab)
        q1, q3 = np.percentile(d, [25, 75])
        rows.append(dict(set=name, n=len(d), dice_median=float(np.median(d)), dice_iqr=float(q3 - q1)))
    return pd.DataFrame(rows)


def attribute_pairs(g: Generator, data: Data, labels: np.ndarray, sexes, seed: int = 0) -> dict[str, np.ndarray]:
    """For each mask, two slices from the same noise: one with the advantaged group's attributes, one with the
    minority's (the mask's own sex). Only the attribute differs between the members of a pair."""
    out = {}
    for group in (data.advantaged, data.minority):
        cls = [g.class_for(group, s)[0] for s in sexes]
        out[group] = sample(g, labels, cls, seed=seed)
    return out


def attribute_fidelity(enc: GroupEncoder, real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray],
                       minority: str) -> pd.DataFrame:
    """The classifier's share of slices called minority (P > 0.5) per named set; ``real`` and ``synthetic``
    map a group to slices (real: held-out; synthetic: generated with that group's attributes). A classifier
    that tells the real groups apart and calls the synthetic minority slices minority has found the attribute
    in them."""
    rows = []
    for kind, sets in (("real", real), ("synthetic", synthetic)):
        for group, im in sets.items():
            p = enc.p_minority(im)
            rows.append(dict(kind=kind, group=group, n=len(p), called_minority=float((p > 0.5).mean()),
                             mean_p=float(p.mean()), correct=float(((p > 0.5) == (group == minority)).mean())))
    return pd.DataFrame(rows)


def pair_shift(enc: GroupEncoder, pairs: dict[str, np.ndarray], advantaged: str, minority: str) -> dict:
    """Over mask-and-noise pairs: the share in which the minority member gets the higher P(minority), and the
    mean difference of the two probabilities."""
    pa, pm = enc.p_minority(pairs[advantaged]), enc.p_minority(pairs[minority])
    return {"pairs": len(pa), "minority_higher": float((pm > pa).mean()), "mean_difference": float((pm - pa).mean())}
