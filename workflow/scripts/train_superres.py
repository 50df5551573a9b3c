"""Rule train_superres: train the x2 generator on the training subjects, or load a checkpoint."""
import sys
from pathlib import Path

from oncoflow.runtime import start_job

sm = start_job(snakemake)  # noqa: F821  (injected by Snakemake)

import nibabel as nib
import numpy as np
import pandas as pd
import torch

from oncoflow.superres.degrade import axis_index
from oncoflow.superres.gan import GanConfig, load_checkpoint, save_checkpoint, train_generator

torch.set_num_threads(sm.threads)
sr = dict(sm.params.superres)
roles = [{"subject": s, "role": "train"} for s in sm.params.train] + [
    {"subject": s, "role": "heldout"} for s in sm.params.heldout]
if sr["checkpoint"]:
    gen, ckpt = load_checkpoint(Path(sr["checkpoint"]))
    if list(ckpt["axes"]) != list(sr["axes"]):
        print(f"note: checkpoint trained for axes {ckpt['axes']}, applied along {sr['axes']}", file=sys.stderr)
    seen = set(ckpt.get("subjects", [])) & set(sm.params.heldout)
    if seen:
        raise ValueError(f"superres.checkpoint {sr['checkpoint']} was trained on held-out subject(s) "
                         f"{sorted(seen)[:3]}: its PSNR/SSIM would be optimistic (change superres.seed)")
    cfg = GanConfig(**ckpt["config"])
    history = ckpt.get("history", [])
    trained_on = list(ckpt.get("subjects", []))
    print(f"loaded generator from {sr['checkpoint']}", file=sys.stderr)
else:
    cfg = GanConfig(**{k: sr[k] for k in ("channels", "blocks", "epochs", "steps_per_epoch", "batch_size",
                                          "patch_size", "patch_slices", "lr", "adv_weight", "seed")})
    volumes = []
    for path in sm.input.images:
        data = np.asarray(nib.load(path).dataobj, dtype=np.float32)
        volumes += [np.moveaxis(data, axis_index(a), 2) for a in sr["axes"]]
    gen, history = train_generator(volumes, cfg)
    trained_on = list(sm.params.train)
save_checkpoint(Path(sm.output.generator), gen, cfg, sr["axes"], trained_on, history)
pd.DataFrame(history or [{"epoch": 0}]).to_csv(sm.output.history, sep="\t", index=False, float_format="%.6f")
pd.DataFrame(roles).to_csv(sm.output.subjects, sep="\t", index=False)
