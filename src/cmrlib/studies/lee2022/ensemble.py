"""k-fold ensembles (Lee et al. 2022, §3, as nnU-Net does it): the training subjects are split into k folds, one
model is trained on each k − 1 of them, and a test image is segmented by averaging the k models' softmax
outputs (MONAI's ``MeanEnsemble``), taking the argmax, and keeping each structure's largest component.

Folds split subjects, never slices: the ED and ES stacks of one subject are always in the same fold. Each
fold's model is an ordinary run of the store.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from cmrlib.config import runs_dir
from cmrlib.data.pipeline import Data
from cmrlib.errors import InputError
from cmrlib.files import stable_hash
from cmrlib.runs.experiments import eval_batch_size, evaluate, stored_metrics, trained_model
from cmrlib.training.methods import METHODS
from cmrlib.training.postprocess import postprocess, postprocessing


def fold_of(subject_ids, k: int, seed: int) -> dict:
    """Subject → fold (0 … k − 1): a seeded permutation of the subjects dealt out in turn, so fold sizes differ
    by at most one."""
    ids = sorted(set(subject_ids))
    if k < 2 or k > len(ids):
        raise InputError(f"k-fold ensembles need 2 ≤ k ≤ the number of training subjects ({len(ids)}), got k = {k}")
    perm = np.random.default_rng(seed).permutation(len(ids))
    return {ids[j]: i % k for i, j in enumerate(perm)}


def fold_data(data: Data, k: int, fold: int) -> Data:
    """The same data with the training subjects of ``fold`` set aside (split ``held_out``)."""
    s = data.subjects
    folds = fold_of(s.subject_id[s.split == "train"], k, data.params["seed"])
    out = s.split.where(~s.subject_id.map(folds).eq(fold), "held_out")
    return Data(data.cache, s.assign(split=out), data.params)


@torch.no_grad()
def mean_softmax(models, images: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The models' softmax outputs averaged (MONAI ``MeanEnsemble``): (S, C, H, W) float32 for slices (S, H, W)."""
    from monai.transforms import MeanEnsemble
    dev = next(models[0].parameters()).device
    out = []
    for s in range(0, len(images), batch_size):
        x = torch.as_tensor(images[s:s + batch_size]).float().unsqueeze(1).to(dev)
        probs = [torch.softmax(m.eval()(x).float(), 1) for m in models]
        out.append(MeanEnsemble()(torch.stack(probs)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 4) + images.shape[1:], np.float32)


def segment_ensemble(models, images: np.ndarray, params: dict) -> np.ndarray:
    """Label maps of the ensemble, post-processed as the profile says."""
    probs = mean_softmax(models, images, eval_batch_size(params))
    return postprocess(probs.argmax(1).astype(np.uint8), postprocessing(params))


def fold_models(data: Data, name: str, k: int, progress: bool = False) -> list:
    """The k models of a baseline-method experiment, each trained without one fold."""
    return [trained_model(fold_data(data, k, f), f"{name}_fold{f}of{k}", METHODS["baseline"], progress)[0]
            for f in range(k)]


def run_ensemble(data: Data, name: str, k: int, progress: bool = False) -> pd.DataFrame:
    """Per-structure metrics of the k-fold ensemble on the test and external subjects, kept in the run folder
    ``<name>_ensemble<k>-<hash of the training subjects and profile>``."""
    models = fold_models(data, name, k, progress)
    key = stable_hash([sorted(data.ids("train")), data.params["training"], k, data.cache.path.name,
                       postprocessing(data.params)])
    rd = runs_dir(data.params) / f"{name}_ensemble{k}-{key}"

    def compute():
        df = evaluate(lambda img, lab: (segment_ensemble(models, img, data.params), True), data, progress)
        df["experiment"] = f"{name}_ensemble{k}"
        return df
    return stored_metrics(rd, compute)
