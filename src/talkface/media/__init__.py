"""The ffmpeg boundary, one module per concern (import from the module; this package runs none of them): probe.py
(probe, MediaInfo, MediaError), decode.py (iter_frames, read_frames, read_audio: 25 fps RGB, 16 kHz mono), encode.py
(write_video, write_wav), ffmpeg_bin.py (the pinned executables), mfcc.py (syncnet_python's MFCC)."""
