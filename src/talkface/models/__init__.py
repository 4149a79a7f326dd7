"""Neural network modules: sync experts (SyncNet, AVSyncNet), the generator, the discriminator, VGG-19 features."""

from .avsyncnet import AVSYNCNET_PRESETS, AVSyncNet, AVSyncNetConfig
from .discriminator import Discriminator, DiscriminatorConfig
from .expert import SyncExpert
from .expert_io import build_expert, load_expert, save_expert
from .generator import Generator, GeneratorConfig
from .layers import AudioEncoder
from .syncnet import SyncNet, SyncNetConfig
from .vgg import VGG19Features

__all__ = [
    "AVSYNCNET_PRESETS", "AVSyncNet", "AVSyncNetConfig", "AudioEncoder", "Discriminator", "DiscriminatorConfig",
    "Generator", "GeneratorConfig", "SyncExpert", "SyncNet", "SyncNetConfig", "VGG19Features", "build_expert",
    "load_expert", "save_expert",
]
