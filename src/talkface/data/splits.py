"""Train/val/test splits: speaker-disjoint (no speaker appears in two splits), or a dataset's official lists.

    splits = speaker_disjoint_split(clip_ids, speakers, (0.8, 0.1, 0.1), seed=0)   # {"train": [...], ...}
    write_splits("data/splits", splits)                                             # data/splits/{train,val,test}.txt
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPLITS = ("train", "val", "test")


def speaker_disjoint_split(clip_ids: list[str], speakers: list[str], fractions=(0.8, 0.1, 0.1),
                           seed: int = 0) -> dict[str, list[str]]:
    """Assign whole speakers to splits so that each split's share of clips approaches `fractions`.

    Speakers are shuffled with `seed`; every split with a non-zero fraction first gets one speaker, largest fraction
    first (with 2 speakers and (0.8, 0.1, 0.1): train and val), then each next speaker goes to the split furthest
    below its target clip count."""
    if len(clip_ids) != len(speakers):
        raise ValueError("clip_ids and speakers differ in length")
    fr = np.asarray(fractions, np.float64)
    if fr.shape != (3,) or (fr < 0).any() or fr.sum() <= 0:
        raise ValueError(f"split fractions must be three non-negative numbers (train, val, test), got {fractions}")
    fr = fr / fr.sum()
    by_speaker: dict[str, list[str]] = {}
    for c, s in zip(clip_ids, speakers):
        by_speaker.setdefault(str(s), []).append(c)
    names = sorted(by_speaker)
    order = [names[i] for i in np.random.default_rng(seed).permutation(len(names))]
    target = fr * len(clip_ids)
    count = np.zeros(3)
    out: dict[str, list[str]] = {k: [] for k in SPLITS}
    seeds = [int(i) for i in np.argsort(-fr, kind="stable") if fr[i] > 0]
    for i, spk in enumerate(order):
        k = seeds[i] if i < len(seeds) else int(np.argmax(np.where(fr > 0, target - count, -np.inf)))
        out[SPLITS[k]].extend(sorted(by_speaker[spk]))
        count[k] += len(by_speaker[spk])
    return {k: sorted(v) for k, v in out.items()}


def official_split(clip_ids: list[str], splits: list[str]) -> dict[str, list[str]]:
    """Group clips by a split column that a source fixed (LRS2's official lists)."""
    out: dict[str, list[str]] = {k: [] for k in SPLITS}
    for c, s in zip(clip_ids, splits):
        if s not in out:
            raise ValueError(f"clip {c}: split {s!r} is not one of {SPLITS}")
        out[s].append(c)
    return {k: sorted(v) for k, v in out.items()}


def write_splits(out_dir: str | Path, splits: dict[str, list[str]]) -> None:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in SPLITS:
        ids = splits.get(name, [])
        (out_dir / f"{name}.txt").write_text("".join(f"{c}\n" for c in ids))


def read_split(splits_dir: str | Path, name: str) -> list[str]:
    path = Path(splits_dir) / f"{name}.txt"
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
