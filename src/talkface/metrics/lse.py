"""LSE-C and LSE-D (Wav2Lip's use of SyncNet), the syncnet_python algorithm (METHOD.md §7).

For each video frame v there is one video embedding (frames v..v+4) and one audio embedding (the audio of the same
0.2 s). With vshift = 15, the audio embeddings are zero-padded by 15 on both sides and, for each v, the Euclidean
distances to the 31 audio embeddings at offsets -15..15 are taken; averaging each offset over all v gives the
mean-distance curve. min_dist = min(curve), conf = median(curve) - min_dist, offset = vshift - argmin(curve).
Over a test set: LSE-D = mean of min_dist, LSE-C = mean of conf.

Two scorers share the algorithm and never mix (each result carries its `scorer` label):
- `LSEScorer.from_official(path)`: syncnet_v2 (the official weights; comparable to the papers);
- `LSEScorer.from_expert(expert)`: our own trained sync expert (512-d, L2-normalised embeddings of 5-frame windows and
  the aligned mel window) when syncnet_v2 is not available. Its numbers are on another scale and are labelled
  "talkface-syncnet (not official syncnet_v2)".

What each takes (`score(frames, audio)`, RGB frames of any square size):
- syncnet_v2 sees whole 224x224 faces (5 frames, BGR, raw 0-255): frames of another size are resized to 224
  (bilinear) by `official_face_input`. The framing the papers score it on is syncnet_python's window
  (metrics/lse_framing.py: 2.8 x half the box side, from the top of the face box to below the chin, padded with 110);
  the evaluate stage gives it those windows (`evaluate.lse_framing: reference`), or the tight 96-px crops resized to
  224 (`crop`), a tighter, more zoomed-in face than that.
- our expert was trained on the crop stage's S x S crops (96 px): `embed_video` takes the lower half of whatever
  square it is given and resizes it to 48x96 (models/expert.py, `lower_half_stack`). On the store's crops that is the
  mouth and chin it was trained on; on a 224-px reference window it would be rows 0.2..0.9 box sides below the box
  centre, 1.4 boxes wide (from about the mouth down over chin and neck): another input distribution. The evaluate stage
  therefore gives it the crops by default (`evaluate.lse_expert_framing: crop`).
"""

from __future__ import annotations

import math
from typing import Callable

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..media.mfcc import int16_scale, mfcc
from ..models import lse_syncnet as sv2

OFFICIAL = "syncnet_v2 (official)"
EXPERT = "talkface-syncnet (not official syncnet_v2)"
FPS, SAMPLE_RATE = 25, 16000


def lse_scores(
    video_feats: torch.Tensor, audio_feats: torch.Tensor, vshift: int = 15
) -> tuple[int, float, float, np.ndarray]:
    """(offset, min_dist, conf, dist_curve [2*vshift+1]) for one video; feats [T,D] and [T',D].

    dist_curve[j] is the mean distance between video embedding v and audio embedding v + j - vshift (zero vector
    outside the audio), so a positive offset means audio embedding v - offset matches video embedding v.
    """
    v, a = torch.as_tensor(video_feats).float(), torch.as_tensor(audio_feats).float()
    if v.dim() != 2 or a.dim() != 2 or v.shape[1] != a.shape[1] or v.shape[0] == 0:
        raise ValueError(f"expected embeddings [T,D] and [T',D], got {list(v.shape)} and {list(a.shape)}")
    win = 2 * vshift + 1
    # Pad as syncnet_python does (zeros on both sides), plus zeros on the right if the audio is shorter.
    a = F.pad(a, (0, 0, vshift, vshift + max(0, v.shape[0] - a.shape[0])))
    windows = a.unfold(0, win, 1)[: v.shape[0]].transpose(1, 2)  # [T, win, D]
    # pairwise_distance adds eps=1e-6 to the difference, as the reference does.
    dists = F.pairwise_distance(v[:, None, :].expand_as(windows), windows)  # [T, win]
    curve = dists.mean(dim=0)
    min_dist, min_idx = torch.min(curve, dim=0)
    conf = torch.median(curve) - min_dist
    return vshift - int(min_idx), float(min_dist), float(conf), curve.numpy()


def num_windows(n_frames: int, n_samples: int) -> int:
    """syncnet_python scores frames 0 .. min(T, floor(N / 640)) - 6 (its `lastframe = min_length - 5`)."""
    return min(n_frames, math.floor(n_samples / (SAMPLE_RATE / FPS))) - sv2.WINDOW


class LSEScorer:
    """Scores one video (face crops + 16 kHz audio) at a time with one embedding source."""

    def __init__(self, embed: Callable[[np.ndarray, np.ndarray], tuple[torch.Tensor, torch.Tensor]], source: str,
                 vshift: int = 15):
        self.embed, self.source, self.vshift = embed, source, vshift

    @classmethod
    def from_official(cls, path=None, device="cpu", batch_size: int = 20, vshift: int = 15) -> "LSEScorer":
        """syncnet_v2 from `path` or the torch hub cache; raises WeightsNotAvailable when absent."""
        model = sv2.load_syncnet_v2(path, device)

        @torch.no_grad()
        def embed(frames: np.ndarray, audio: np.ndarray):
            n = num_windows(len(frames), len(audio))
            if n <= 0:
                raise ValueError(f"LSE needs at least {sv2.WINDOW + 1} frames of video and audio")
            faces = official_face_input(frames)                                      # [T,3,224,224] BGR 0-255
            cc = torch.from_numpy(mfcc(int16_scale(audio)).T.astype(np.float32))     # [13, T_mfcc]
            vf, af = [], []
            for s in range(0, n, batch_size):
                idx = range(s, min(n, s + batch_size))
                lips = torch.stack([faces[i:i + sv2.WINDOW].transpose(0, 1) for i in idx])   # [B,3,5,224,224]
                aud = torch.stack([cc[:, 4 * i:4 * i + sv2.MFCC_WINDOW] for i in idx])[:, None]  # [B,1,13,20]
                vf.append(model.embed_lips(lips.to(device)).cpu())
                af.append(model.embed_audio(aud.to(device)).cpu())
            return torch.cat(vf), torch.cat(af)

        return cls(embed, OFFICIAL, vshift)

    @classmethod
    def from_expert(cls, expert, device="cpu", batch_size: int = 64, vshift: int = 15,
                    mel_fn: Callable[[np.ndarray], np.ndarray] | None = None, window=None) -> "LSEScorer":
        """Our sync expert (models/expert.py interface) as the embedding source; `mel_fn`: audio -> [T_mel, 80];
        `window` (model_inputs.WindowConfig): the expert's audio windows, as in its training (default: k of the
        expert, 25 fps video, 80 mel frames/s).

        Frames are passed at their own size; the expert takes their lower half and resizes it to its input (48x96
        for SyncNet), so it should get the framing it was trained on: the clip store's face crops (module docstring)."""
        from ..model_inputs import WindowConfig, mel_window

        if mel_fn is None:
            from ..data.mel import melspectrogram as mel_fn
        expert = expert.eval().to(device)
        k = expert.k
        window = window or WindowConfig(k=k)

        @torch.no_grad()
        def embed(frames: np.ndarray, audio: np.ndarray):
            n = min(len(frames), math.floor(len(audio) / (SAMPLE_RATE / FPS))) - k
            if n <= 0:
                raise ValueError(f"LSE needs at least {k + 1} frames of video and audio")
            video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255.0  # [T,3,S,S]
            mel = np.asarray(mel_fn(np.asarray(audio, np.float32)), np.float32)  # [T_mel, 80]
            vf, af = [], []
            for s in range(0, n, batch_size):
                idx = range(s, min(n, s + batch_size))
                clips = torch.stack([video[i:i + k] for i in idx])                  # [B,k,3,S,S]
                mels = torch.stack([torch.from_numpy(mel_window(mel, i, window)) for i in idx])  # [B,1,80,16]
                vf.append(expert.embed_video(clips.to(device)).cpu())
                af.append(expert.embed_audio(mels.to(device)).cpu())
            return torch.cat(vf), torch.cat(af)

        return cls(embed, EXPERT, vshift)

    def score(self, frames: np.ndarray, audio: np.ndarray) -> dict:
        """frames: uint8 [T,H,W,3] RGB face crops at 25 fps; audio: float [N] 16 kHz mono in [-1, 1]."""
        frames = np.asarray(frames)
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise ValueError(f"expected RGB frames [T,H,W,3], got {frames.shape}")
        v, a = self.embed(frames, np.asarray(audio))
        offset, min_dist, conf, curve = lse_scores(v, a, self.vshift)
        return {"offset": offset, "min_dist": min_dist, "conf": conf, "n_windows": int(v.shape[0]),
                "scorer": self.source, "curve": curve.tolist()}


def official_face_input(frames: np.ndarray) -> torch.Tensor:
    """uint8 RGB [T,H,W,3] -> float [T,3,224,224] in syncnet_python's convention (BGR, raw 0-255, bilinear)."""
    out = np.stack([cv2.resize(f, (sv2.FACE_SIZE, sv2.FACE_SIZE), interpolation=cv2.INTER_LINEAR)
                    if f.shape[:2] != (sv2.FACE_SIZE, sv2.FACE_SIZE) else f for f in frames])
    return torch.from_numpy(np.ascontiguousarray(out[..., ::-1])).permute(0, 3, 1, 2).float()


def summarize(results: list[dict]) -> dict:
    """LSE-D / LSE-C over videos (mean of min_dist / conf); all results must come from one scorer."""
    if not results:
        raise ValueError("no LSE results to summarize")
    sources = {r["scorer"] for r in results}
    if len(sources) != 1:
        raise ValueError(f"LSE results from different scorers cannot be averaged: {sorted(sources)}")
    return {"LSE-D": float(np.mean([r["min_dist"] for r in results])),
            "LSE-C": float(np.mean([r["conf"] for r in results])),
            "n_videos": len(results), "scorer": sources.pop()}
