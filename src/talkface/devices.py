"""The one device resolver: a params `device` string -> torch.device.

    resolve_device("auto")     # cuda (this process's LOCAL_RANK under torchrun) when available, else cpu
    resolve_device("cuda:1")   # DeviceUnavailable when CUDA is absent; "cpu", "cuda", "cuda:N" otherwise as given
"""

from __future__ import annotations

import os

import torch


class DeviceUnavailable(RuntimeError):
    """A CUDA device was asked for on a machine without CUDA; the message is one line for the user."""


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() \
            else torch.device("cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailable(f"device {name!r} requested but CUDA is not available on this machine")
    return torch.device(name)
