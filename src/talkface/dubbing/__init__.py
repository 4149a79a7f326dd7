"""The parts of dubbing (talkface.dub): whole-clip face-box tracking, window generation with the model-input contract,
and the media plumbing (pairs CSV, background decoding, muxing)."""


class DubError(RuntimeError):
    """A dubbing request that cannot be served; the message is one line for the user."""
