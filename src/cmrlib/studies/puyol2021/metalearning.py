"""Fair meta-learning for segmentation (Puyol-Antón et al. 2021, §3, approach 2).

A classifier of the protected group (a MONAI DenseNet) reads two channels: the image and the segmentation
network's output. The two networks are first trained apart (the segmenter is the baseline; the classifier
learns on the frozen segmenter's output), then jointly on one multi-task objective,

    L = L_seg + λ · L_cls,

with λ the profile's ``study2021.meta_weight``. The classifier's loss reaches the segmenter through the second
channel: its gradient moves the segmentation towards outputs from which the group is easier to tell, not
harder (the objective is not adversarial). Both phases checkpoint and resume like every run of the store.

The segmentation channel is the softmax's expected label divided by 3 (0 background … 1 RV blood pool): a
differentiable one-channel summary of the output, which the study does not specify further.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import torch

from cmrlib.config import runs_dir
from cmrlib.data.pipeline import Data, volume_indices
from cmrlib.files import stable_hash, write_atomic
from cmrlib.runs.experiments import evaluate, pretrained, segment, stored_metrics
from cmrlib.runs.store import require_trained
from cmrlib.studies.puyol2021.settings import settings
from cmrlib.training.losses import LOSSES
from cmrlib.training.methods import METHODS, train_config, training_steps
from cmrlib.training.sampling import stratified_sampler, uniform_sampler
from cmrlib.training.train import batch, poly_lr, run_loop


def classifier_net(n_groups: int, in_channels: int = 2) -> torch.nn.Module:
    """A small DenseNet (MONAI) from two channels to group logits."""
    from monai.networks.nets import DenseNet
    return DenseNet(spatial_dims=2, in_channels=in_channels, out_channels=n_groups, init_features=16,
                    growth_rate=8, block_config=(2, 2, 2), bn_size=2)


def seg_channel(logits: torch.Tensor) -> torch.Tensor:
    """The segmenter's output as one channel: the expected label under its softmax, divided by 3."""
    p = torch.softmax(logits.float(), dim=1)
    k = torch.arange(p.shape[1], device=p.device, dtype=p.dtype).view(1, -1, 1, 1)
    return (p * k).sum(1, keepdim=True) / (p.shape[1] - 1)


def joint_loss(seg: torch.nn.Module, clf: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Tensor,
               weight: float, seg_loss: str = "dice_ce"):
    """The multi-task objective: (L_seg + weight · L_cls, L_seg, L_cls). The classifier sees
    ``[image, seg_channel(seg(image))]``; the segmenter's output is not detached, so L_cls trains both."""
    logits = seg(x)
    l_seg = LOSSES[seg_loss](logits, y).mean()
    l_cls = torch.nn.functional.cross_entropy(clf(torch.cat([x, seg_channel(logits)], 1)), g)
    return l_seg + weight * l_cls, l_seg, l_cls


def _loop(run_dir, nets: dict, steps: int, lr: float, seed: int, step_loss, checkpoint_every: int,
          progress: bool, desc: str, stop_at: int | None = None) -> int:
    """Adam over the parameters of ``nets`` with nnU-Net's poly schedule, ``step_loss(gen)`` giving each step's
    loss, in the library's one training loop (:func:`cmrlib.training.train.run_loop`)."""
    require_trained(run_dir, steps, desc)      # read-only (the claims chapter): never train
    params = [p for n in nets.values() for p in n.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed + 1)
    for n in nets.values():
        n.train()

    def step_fn(step: int) -> torch.Tensor:
        loss = step_loss(gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 12.0)
        opt.step()
        return loss

    def load(state: dict) -> int:
        for k, n in nets.items():
            n.load_state_dict(state[k])
        opt.load_state_dict(state["optimizer"])
        gen.set_state(state["generator"])
        return state["step"]

    step = run_loop(run_dir, steps, checkpoint_every, step_fn,
                    lambda step: {**{k: n.state_dict() for k, n in nets.items()}, "optimizer": opt.state_dict(),
                                  "generator": gen.get_state(), "step": step},
                    load, lambda step: poly_lr(lr, step, steps), opt, desc=desc, progress=progress, stop_at=stop_at)
    for n in nets.values():
        n.eval()
    return step


def _training_tensors(data: Data):
    images, labels, groups = data.train_arrays()
    names = sorted(set(groups.tolist()), key=str)
    gid = torch.as_tensor([names.index(g) for g in groups.tolist()])
    return torch.as_tensor(images), torch.as_tensor(labels), groups, gid, names


def meta_settings(data: Data) -> dict:
    s = settings(data.params)
    return {**{k: s[k] for k in ("classifier_steps", "joint_steps", "meta_weight", "classifier_lr")},
            "pretrain_steps": max(1, training_steps(data.params) - s["joint_steps"])}


def fair_meta_learning(data: Data, progress: bool = False, stop_at: int | None = None):
    """Train (or resume, or load) both phases: returns (segmenter, classifier, group names, run folder of
    the joint phase). The segmenter's first phase is the baseline trained for the profile's steps less the joint
    phase's (:func:`cmrlib.runs.experiments.pretrained`), so its two phases cost what the baseline does; the
    classifier's own phase comes on top."""
    s = meta_settings(data)
    cfg = train_config(data.params, METHODS["baseline"])
    seg, base = pretrained(data, s["pretrain_steps"], progress)
    imgs, labs, groups, gid, names = _training_tensors(data)
    dev = next(seg.parameters()).device
    if dev.type == "cpu":       # as train_model: on CPU a seed fixes the result
        torch.use_deterministic_algorithms(True, warn_only=True)
    gid = gid.to(dev)
    torch.manual_seed(cfg.seed)
    clf = classifier_net(len(names)).to(dev)
    rd_c = runs_dir(data.params) / f"meta_classifier-{stable_hash([base, names, s['classifier_steps'], s['classifier_lr']])}"
    strat = stratified_sampler(groups)   # the classifier sees every group equally often

    def classifier_step(gen):
        idx = strat.sample(cfg.batch_size, gen)
        x, y = batch(imgs, labs, idx, cfg, gen, dev)
        with torch.no_grad():
            sch = seg_channel(seg(x))
        return torch.nn.functional.cross_entropy(clf(torch.cat([x, sch], 1)), gid[idx.to(dev)])
    seg.eval()
    for p in seg.parameters():
        p.requires_grad_(False)
    _loop(rd_c, {"classifier": clf}, s["classifier_steps"], s["classifier_lr"], cfg.seed, classifier_step,
          cfg.checkpoint_every, progress, "meta classifier")
    for p in seg.parameters():
        p.requires_grad_(True)
    rd_j = runs_dir(data.params) / f"fair_meta_learning-{stable_hash([rd_c.name, s['joint_steps'], s['meta_weight'], cfg.lr])}"
    rd_j.mkdir(parents=True, exist_ok=True)
    write_atomic(rd_j / "config.json", json.dumps({"pretrained": base, "classifier": rd_c.name, **s}, indent=1))
    uni = uniform_sampler(groups)        # the segmenter's batches as the baseline's

    def joint_step(gen):
        idx = uni.sample(cfg.batch_size, gen)
        x, y = batch(imgs, labs, idx, cfg, gen, dev)
        return joint_loss(seg, clf, x, y, gid[idx.to(dev)], s["meta_weight"], cfg.loss)[0]
    _loop(rd_j, {"segmenter": seg, "classifier": clf}, s["joint_steps"], cfg.lr, cfg.seed, joint_step,
          cfg.checkpoint_every, progress, "meta joint", stop_at)
    return seg, clf, names, rd_j


@torch.no_grad()
def classify_subjects(seg, clf, data: Data, names, splits=("test",)) -> pd.DataFrame:
    """The classifier's group for each subject of ``splits``: the argmax of its softmax averaged over every
    slice of the subject's volumes."""
    probs: dict[str, list] = {}
    for vi in volume_indices(data, splits):
        img, _, _ = data.cache.volume(int(vi))
        x = torch.as_tensor(np.asarray(img, np.float32)).unsqueeze(1).to(next(seg.parameters()).device)
        p = torch.softmax(clf(torch.cat([x, seg_channel(seg(x))], 1)), 1).cpu()
        probs.setdefault(data.cache.volumes.subject_id.iloc[int(vi)], []).append(p)
    grp = data.subjects.set_index("subject_id")[data.group_col]
    rows = [dict(subject_id=sid, group=grp[sid], predicted=names[int(torch.cat(ps).mean(0).argmax())])
            for sid, ps in probs.items()]
    return pd.DataFrame(rows)


def classifier_report(pred: pd.DataFrame, names) -> pd.DataFrame:
    """Precision and recall per group and the overall accuracy (last row) of subject-level predictions."""
    rows = []
    for g in names:
        tp = int(((pred.group == g) & (pred.predicted == g)).sum())
        called, true = int((pred.predicted == g).sum()), int((pred.group == g).sum())
        rows.append(dict(group=g, n=true, precision=tp / called if called else float("nan"),
                         recall=tp / true if true else float("nan")))
    rows.append(dict(group="all", n=len(pred), accuracy=float((pred.group == pred.predicted).mean())))
    return pd.DataFrame(rows).set_index("group")


def run_fair_meta_learning(data: Data, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-structure metrics of the jointly trained segmenter (in the joint phase's run folder) and the
    classifier's report on the test subjects (``classifier.csv`` there)."""
    seg, clf, names, rd = fair_meta_learning(data, progress)

    def compute():
        df = evaluate(lambda img, lab: (segment(seg, img, data.params), True), data, progress)
        df["experiment"] = "fair_meta_learning"
        return df
    metrics = stored_metrics(rd, compute)
    out = rd / "classifier.csv"
    if not out.exists():
        write_atomic(out, classifier_report(classify_subjects(seg, clf, data, names), names).to_csv())
    return metrics, pd.read_csv(out, index_col="group")
