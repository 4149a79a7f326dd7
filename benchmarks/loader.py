"""Loader benchmark: our memory-mapped window dataset vs a Wav2Lip-style loader over the same clips.

The Wav2Lip way (its training data layout and its dataset's __getitem__): one JPEG per face frame on disk, the audio as
a wav per clip, and for every sample: read the wav, compute the mel of the whole clip, cut the windows, read and
decode 2k JPEGs (window + identity reference), resize. Ours: frames.npy and the mel memory-mapped, windows sliced.
Both produce the same tensors (frames, identity, mel window, per-frame mels).

    python benchmarks/loader.py [--clips data/clips --mels data/mels --samples 400]

Prints samples/s of each and the disk footprint of each layout. Needs the data stages to have run (`dvc repro mels`).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from talkface.data.mel import MelConfig, melspectrogram  # noqa: E402
from talkface.data.mel_store import kept_clips  # noqa: E402
from talkface.data.windows import WindowConfig, WindowDataset  # noqa: E402
from talkface.media.encode import write_wav  # noqa: E402


class Wav2LipStyleDataset(torch.utils.data.Dataset):
    """Per-frame JPEGs + per-sample mel of the whole wav, as Wav2Lip's training dataset does it."""

    def __init__(self, root: Path, clip_ids: list[str], k: int = 5, size: int = 96, seed: int = 0):
        self.root, self.clip_ids, self.k, self.size, self.seed = root, clip_ids, k, size, seed
        self.n_frames = {c: len(list((root / c).glob("*.jpg"))) for c in clip_ids}

    def __len__(self) -> int:
        return 10**6

    def _read(self, clip: str, start: int) -> np.ndarray:
        frames = []
        for t in range(start, start + self.k):
            img = cv2.imread(str(self.root / clip / f"{t}.jpg"))
            frames.append(cv2.resize(img, (self.size, self.size)))
        return np.stack(frames)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        clip = self.clip_ids[int(rng.integers(len(self.clip_ids)))]
        n = self.n_frames[clip]
        f = int(rng.integers(2, n - 2 * self.k))
        g = int(rng.integers(2, n - self.k))
        window, ref = self._read(clip, f), self._read(clip, g)
        from talkface.media.decode import read_audio  # the wav read per sample, as Wav2Lip does

        wav = read_audio(self.root / clip / "audio.wav", 16000)
        mel = melspectrogram(wav, MelConfig())  # whole clip, every sample
        s = int(80 * f / 25)
        mels = [mel[int(80 * (j - 2) / 25) : int(80 * (j - 2) / 25) + 16].T for j in range(f, f + self.k)]
        to_t = lambda a: torch.from_numpy(a[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255.0  # noqa: E731
        return {"frames": to_t(window), "identity": to_t(ref), "mel": torch.from_numpy(mel[s : s + 16].T[None].copy()),
                "indiv_mels": torch.from_numpy(np.stack(mels)[:, None].copy())}


def export_wav2lip_layout(clips_dir: Path, clip_ids: list[str], out: Path) -> None:
    for clip in clip_ids:
        d = out / clip
        d.mkdir(parents=True, exist_ok=True)
        frames = np.load(clips_dir / clip / "frames.npy", mmap_mode="r")
        for t, frame in enumerate(frames):
            cv2.imwrite(str(d / f"{t}.jpg"), np.ascontiguousarray(frame[..., ::-1]))
        write_wav(d / "audio.wav", np.load(clips_dir / clip / "audio.npy"), 16000)


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def throughput(dataset: torch.utils.data.Dataset, samples: int) -> float:
    dataset[0]  # warm caches / memory maps once, as a long training run would
    t0 = time.perf_counter()
    for i in range(1, samples + 1):
        dataset[i]
    return samples / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=Path, default=Path("data/clips"))
    ap.add_argument("--mels", type=Path, default=Path("data/mels"))
    ap.add_argument("--samples", type=int, default=400)
    args = ap.parse_args()
    torch.set_num_threads(1)
    clip_ids = kept_clips(args.clips)
    if not clip_ids:
        sys.exit(f"no clips in {args.clips}: run `dvc repro mels` first")
    ours = WindowDataset(args.clips, args.mels, clip_ids, WindowConfig(), seed=0)
    tmp = Path(tempfile.mkdtemp(prefix="wav2lip_layout_"))
    try:
        export_wav2lip_layout(args.clips, clip_ids, tmp)
        theirs = Wav2LipStyleDataset(tmp, clip_ids)
        ours_rate = throughput(ours, args.samples)
        theirs_rate = throughput(theirs, max(50, args.samples // 8))
        ours_bytes = sum(du(args.clips / c) for c in clip_ids) + sum(
            (args.mels / f"{c}.npy").stat().st_size for c in clip_ids)
        theirs_bytes = du(tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"clips: {len(clip_ids)}   windows: {ours.n_windows}")
    print(f"talkface WindowDataset : {ours_rate:9.1f} samples/s   disk {ours_bytes / 2**20:8.1f} MiB "
          "(frames.npy uint8 + audio + landmarks + mel)")
    print(f"Wav2Lip-style loader   : {theirs_rate:9.1f} samples/s   disk {theirs_bytes / 2**20:8.1f} MiB "
          "(JPEG per frame + wav)")
    print(f"speed-up: {ours_rate / theirs_rate:.1f}x")


if __name__ == "__main__":
    main()
