"""The Chung & Zisserman SyncNet ("syncnet_v2") that LSE-C / LSE-D are computed with (syncnet_python).

Module names follow syncnet_python's SyncNetModel (`netcnnaud`, `netfcaud`, `netcnnlip`, `netfclip`, Sequential
indices), so the official `syncnet_v2.model` (a torch-saved state dict) loads strictly.

Inputs, exactly as syncnet_python feeds them:
- lip tower: 5 consecutive face crops resized to 224x224, **BGR** channel order (frames are read with OpenCV), raw
  0-255 floats, [B,3,5,224,224] -> 1024-d (not normalised);
- audio tower: MFCC (python_speech_features defaults on 16-bit PCM, 13 x 100 fps) of the 20 MFCC frames
  4v..4v+19 (0.2 s) for the video window starting at frame v, [B,1,13,20] -> 1024-d.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..weights import load_state_strict, not_available, resolve_weights

SYNCNET_V2_FILE = "syncnet_v2.model"
EMBED_DIM = 1024
FACE_SIZE = 224
WINDOW = 5          # video frames per lip window
MFCC_PER_FRAME = 4  # 100 fps MFCC / 25 fps video
MFCC_WINDOW = 20    # MFCC frames per audio window


def _conv2d(cin, cout, k, stride=1, pad=0):
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=pad), nn.BatchNorm2d(cout), nn.ReLU()]


def _conv3d(cin, cout, k, stride=1, pad=0):
    return [nn.Conv3d(cin, cout, k, stride=stride, padding=pad), nn.BatchNorm3d(cout), nn.ReLU()]


def _head(dim: int):
    return nn.Sequential(nn.Linear(512, 512), nn.BatchNorm1d(512), nn.ReLU(), nn.Linear(512, dim))


class SyncNetV2(nn.Module):
    def __init__(self, embed_dim: int = EMBED_DIM):
        super().__init__()
        # Audio: [B,1,13,20] -> [B,512,1,1]. The no-op 1x1 pool keeps the official Sequential indices.
        self.netcnnaud = nn.Sequential(
            *_conv2d(1, 64, 3, pad=1), nn.MaxPool2d(1, 1),
            *_conv2d(64, 192, 3, pad=1), nn.MaxPool2d(3, stride=(1, 2)),
            *_conv2d(192, 384, 3, pad=1),
            *_conv2d(384, 256, 3, pad=1),
            *_conv2d(256, 256, 3, pad=1), nn.MaxPool2d(3, stride=2),
            *_conv2d(256, 512, (5, 4)),
        )
        self.netfcaud = _head(embed_dim)
        self.netfclip = _head(embed_dim)
        # Lips: [B,3,5,224,224] -> [B,512,1,1,1]
        self.netcnnlip = nn.Sequential(
            *_conv3d(3, 96, (5, 7, 7), stride=(1, 2, 2)), nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv3d(96, 256, (1, 5, 5), stride=(1, 2, 2), pad=(0, 1, 1)),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), pad=(0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), pad=(0, 1, 1)),
            *_conv3d(256, 256, (1, 3, 3), pad=(0, 1, 1)), nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2)),
            *_conv3d(256, 512, (1, 6, 6)),
        )

    def embed_audio(self, mfcc: torch.Tensor) -> torch.Tensor:
        """[B,1,13,20] MFCC windows -> [B,1024]."""
        if mfcc.dim() != 4 or tuple(mfcc.shape[1:]) != (1, 13, MFCC_WINDOW):
            raise ValueError(f"syncnet_v2 audio expects [B,1,13,{MFCC_WINDOW}], got {list(mfcc.shape)}")
        return self.netfcaud(self.netcnnaud(mfcc).flatten(1))

    def embed_lips(self, faces: torch.Tensor) -> torch.Tensor:
        """[B,3,5,224,224] BGR 0-255 -> [B,1024]."""
        if faces.dim() != 5 or tuple(faces.shape[1:]) != (3, WINDOW, FACE_SIZE, FACE_SIZE):
            raise ValueError(f"syncnet_v2 lips expect [B,3,{WINDOW},{FACE_SIZE},{FACE_SIZE}], got {list(faces.shape)}")
        return self.netfclip(self.netcnnlip(faces).flatten(1))


def load_syncnet_v2(path: str | Path | None = None, device: str | torch.device = "cpu") -> SyncNetV2:
    """syncnet_v2 with the official weights (`path` or `syncnet_v2.model` in the torch hub cache), eval mode."""
    file = resolve_weights("syncnet_v2 weights", path, SYNCNET_V2_FILE)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as e:
        raise not_available("syncnet_v2 weights", f"cannot read {file}: {e}") from e
    if not isinstance(state, dict):
        raise not_available("syncnet_v2 weights", f"{file} is not a state dict")
    model = SyncNetV2()
    # syncnet_python copies every tensor of the file into the model; a file without the BN batch counters is fine.
    load_state_strict(model, state, "syncnet_v2 weights", str(file), "SyncNetModel")
    return model.eval().to(device)
