"""talkface: audio-driven talking-face generation (silent-lip generator, AVSyncNet, stabilized sync loss)."""

__version__ = "0.1.0"
