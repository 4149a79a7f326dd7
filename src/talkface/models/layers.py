"""Layers shared by the sync experts and the generators: Conv+BN+ReLU blocks and the Wav2Lip audio encoder.

Both users import downward from here (syncnet.py, generator_io.py, the trainers); nothing here imports a model.
`MEL_BANDS` x `MEL_STEPS` is the audio window the encoders are built for (80 mel bands x 16 steps = 0.2 s, METHOD.md
§1): their strides take exactly that shape to 1x1, so `windows.mel_steps` and `mels.mel.n_mels` must match it
(checked by talkface.data.model_inputs).
"""

from __future__ import annotations

import torch
from torch import nn

MEL_BANDS, MEL_STEPS = 80, 16  # one mel window: 16 steps of 80 bands (METHOD.md §1)


class ConvBlock(nn.Module):
    """Conv2d + BatchNorm + ReLU; with `residual` the input is added before the ReLU (shapes must match)."""

    def __init__(self, cin: int, cout: int, kernel: int, stride: int | tuple[int, int] = 1, padding: int = 0,
                 residual: bool = False):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride, padding)
        self.bn = nn.BatchNorm2d(cout)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn(self.conv(x))
        if self.residual:
            out = out + x
        return torch.relu(out)


def conv_stage(cin: int, cout: int, kernel: int, stride, padding: int, n_res: int) -> list[nn.Module]:
    """One downsampling block followed by `n_res` residual 3x3 blocks."""
    layers = [ConvBlock(cin, cout, kernel, stride, padding)]
    layers += [ConvBlock(cout, cout, 3, 1, 1, residual=True) for _ in range(n_res)]
    return layers


class AudioEncoder(nn.Module):
    """Wav2Lip-style audio encoder: [B,1,80,16] mel -> [B,out_dim,1,1], non-negative.

    80x16 -> 80x16 -> 27x16 (stride 3,1) -> 9x6 (stride 3) -> 3x3 (stride 3,2) -> 1x1 (k3, no pad) -> 1x1 (k1).
    Used inside SyncNet and standalone as a trainable generator audio encoder (P1 setup A).
    """

    def __init__(self, width: int = 32, out_dim: int = 512, n_res: int = 2):
        super().__init__()
        w = width
        self.out_dim = out_dim
        self.net = nn.Sequential(
            *conv_stage(1, w, 3, 1, 1, n_res),
            *conv_stage(w, 2 * w, 3, (3, 1), 1, n_res),
            *conv_stage(2 * w, 4 * w, 3, 3, 1, n_res),
            *conv_stage(4 * w, 8 * w, 3, (3, 2), 1, n_res),
            ConvBlock(8 * w, out_dim, 3, 1, 0),
            ConvBlock(out_dim, out_dim, 1, 1, 0),
        )

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        return self.net(mel)
