"""`talkface dub`: tracking without seams, paste-back, timeline (loop/hold/short audio), bad input, no-face passthrough.

Generators are tiny and randomly initialised (written to a checkpoint in the test), so the dubbed mouth is noise: the
tests check where pixels change, not what they look like."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from talkface import cli
from talkface.dub import NO_CHECKPOINT, Dubber, DubConfig
from talkface.dubbing.norm_stats import NormStatsConfig
from talkface.dubbing.tracking import gap_mask, track_all
from talkface.faces.detect import Detection
from talkface.media.decode import read_frames
from talkface.media.encode import write_video
from talkface.media.ffmpeg_bin import ffmpeg_exe
from talkface.media.probe import probe
from talkface.models.generator import Generator, GeneratorConfig
from talkface.models.layers import AudioEncoder
from talkface.models.generator_io import joint_audio_spec, save_generator

from conftest import real_samples_dir

torch.set_num_threads(1)


def _ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _tiny_generator(seed: int) -> Generator:
    torch.manual_seed(seed)
    cfg = GeneratorConfig(face_size=96, k=5, width=4, max_width=16, audio_dim=16)
    return Generator(cfg, AudioEncoder(width=4, out_dim=16)).eval()


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> Path:
    """models/generator.pt + models/silent.pt, tiny and random (the real ones come from `dvc repro`)."""
    d = tmp_path_factory.mktemp("models")
    save_generator(_tiny_generator(0), d / "generator.pt", joint_audio_spec(4, 16), use_silent_reference=True)
    save_generator(_tiny_generator(1), d / "silent.pt", joint_audio_spec(4, 16))
    return d / "generator.pt"


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """A 0.6 s 200x200 face clip cut from a real sample (when present), a 1.0 s stereo 48 kHz speech wav, a plain
    colour clip with audio, and a video without audio."""
    d = tmp_path_factory.mktemp("media")
    out = {"speech": d / "speech.wav", "plain": d / "plain.mp4", "mute": d / "mute.mp4"}
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:sample_rate=48000:duration=1.0", "-ac", "2", str(out["speech"]))
    _ffmpeg("-f", "lavfi", "-i", "color=c=0x4080c0:s=96x80:r=30:d=0.6", "-f", "lavfi", "-i",
            "sine=frequency=300:duration=0.6", "-shortest", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
            str(out["plain"]))
    _ffmpeg("-f", "lavfi", "-i", "color=c=gray:s=64x64:r=25:d=0.4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
            str(out["mute"]))
    real = real_samples_dir()
    if real is not None:
        out["face"] = d / "face.mp4"
        _ffmpeg("-i", str(real / "vrt_face_3.mp4"), "-t", "0.6", "-vf", "scale=200:200", "-c:v", "libx264",
                "-preset", "veryfast", "-crf", "12", "-c:a", "aac", str(out["face"]))
    return out


class FixedDetector:
    """Stand-in detector: a box drifting one pixel per frame, no face on the frames in `missing`."""

    name = "fixed"

    def __init__(self, box=(40.0, 30.0, 140.0, 150.0), missing=()):
        self.box, self.missing = np.array(box, np.float32), set(missing)

    def detect(self, frames, start=0):
        return [None if start + i in self.missing else Detection(self.box + (start + i), 1.0)
                for i in range(len(frames))]


def _dubber(cfg: DubConfig | None = None) -> Dubber:
    return Dubber(_tiny_generator(0), _tiny_generator(1), cfg or DubConfig(detector="haar"), "cpu", progress=False)


def _run(dubber: Dubber, video: Path, audio: Path, seconds: float | None = None):
    from talkface.data.mel import melspectrogram
    from talkface.media.decode import read_audio

    info = probe(video)
    wav = read_audio(audio, 16000)
    n_audio = int(np.ceil(len(wav) / 16000 * dubber.fps - 1e-6))
    stats: dict = {}
    blocks = list(dubber.iter_dubbed(video, info, melspectrogram(wav), n_audio, stats))
    cat = [np.concatenate([b[i] for b in blocks]) for i in range(4)]
    return (*cat, stats, n_audio)


# ------------------------------------------------------------------------------------------------ tracking


def test_gap_mask_known_answer():
    nan = [np.nan] * 4
    raw = np.array([nan, [0, 0, 1, 1], nan, nan, [0, 0, 1, 1], nan, nan, nan, [0, 0, 1, 1], nan], np.float32)
    # gap of 2 (<= max_gap 2) is filled, gap of 3 is not, leading/trailing misses never
    assert gap_mask(raw, 2).tolist() == [False, True, True, True, True, False, False, False, True, False]


def test_face_pass_is_the_whole_clip_track(media):
    """The dub's boxes are `track_all` of the detections of the first n_audio + lag frames."""
    d = _dubber(DubConfig(detector="haar", chunk_frames=4))
    d.detector = FixedDetector(missing={3, 4, 12})
    info = probe(media["plain"])
    boxes, mask = d.detect_track(media["plain"], info, 5 + d.track_lag())
    assert len(boxes) == 5 + d.track_lag() == 13  # stops there (the 0.6 s video has 15 frames)
    raw = np.array([[np.nan] * 4 if t in {3, 4, 12} else FixedDetector().box + t for t in range(len(boxes))],
                   np.float32)
    want_boxes, want_mask = track_all(raw, info.width, info.height, d.cfg.pads, d.cfg.smooth_window,
                                      d.cfg.smooth_method, d.cfg.max_gap)
    np.testing.assert_array_equal(mask, want_mask)
    np.testing.assert_array_equal(boxes, want_boxes)


# ------------------------------------------------------------------------------------------------ pipeline


def test_chunk_size_does_not_change_output(media):
    """No seams at chunk borders: any chunking gives bit-identical frames (stand-in detector with misses)."""
    outs = []
    for chunk in (4, 13, 64):
        d = _dubber(DubConfig(detector="haar", chunk_frames=chunk, batch_size=3, reference_every=10))
        d.detector = FixedDetector(missing={3, 4, 12})
        out, src, boxes, dubbed, stats, n_audio = _run(d, media["plain"], media["speech"])
        outs.append(out)
        assert len(out) == n_audio == 25 and stats["references"] == 3  # segments 0-9, 10-19, 20-24
    assert dubbed.tolist() == [True] * 25  # gaps of 2 and 1 frames are interpolated
    np.testing.assert_array_equal(outs[0], outs[1])
    np.testing.assert_array_equal(outs[0], outs[2])


def test_paste_changes_only_the_lower_face(media):
    if "face" not in media:
        pytest.skip("../shared/real-samples not present")
    d = _dubber(DubConfig(detector="haar", long_audio="loop"))
    out, src, boxes, dubbed, stats, n_audio = _run(d, media["face"], media["speech"])
    assert len(out) == n_audio == 25 and stats["video_frames"] == 15  # 0.6 s looped to 1.0 s
    assert dubbed.mean() > 0.8, "haar should find the face on most frames of the real sample"
    np.testing.assert_array_equal(src[15:], src[:10])  # loop restarts at frame 0
    for t in np.flatnonzero(dubbed):
        x0, y0, x1, y1 = boxes[t].astype(int)
        outside = np.ones(out.shape[1:3], bool)
        outside[y0:y1, x0:x1] = False
        diff = np.abs(out[t].astype(int) - src[t].astype(int)).max(-1)
        assert diff[outside].max() == 0  # the rest of the frame is untouched
        cx, cy, rx, ry = d.cfg.paste.ellipse  # the feathered ellipse over mouth and chin: nothing above or beside it
        assert diff[y0: y0 + int((cy - ry) * (y1 - y0))].max() == 0
        assert diff[y0: y1, x0: x0 + int((cx - rx) * (x1 - x0))].max() == 0
        lower = diff[(y0 + y1) // 2 + (y1 - y0) // 4: y1 - (y1 - y0) // 8, x0 + (x1 - x0) // 4: x1 - (x1 - x0) // 4]
        assert lower.mean() > 5  # the mouth region is regenerated
    for t in np.flatnonzero(~dubbed):
        np.testing.assert_array_equal(out[t], src[t])


def test_hold_repeats_last_frame(media):
    d = _dubber(DubConfig(detector="haar", long_audio="hold", chunk_frames=8))
    d.detector = FixedDetector((10.0, 10.0, 60.0, 60.0))
    out, src, boxes, dubbed, stats, n_audio = _run(d, media["plain"], media["speech"])
    assert stats["video_frames"] == 15 and len(out) == 25
    for t in range(15, 25):
        np.testing.assert_array_equal(src[t], src[14])


@pytest.mark.parametrize("long_audio", ["hold", "loop"])
def test_pasting_in_place_gives_the_same_frames(media, long_audio):
    """`talkface dub` pastes into the decoded frames (keep_source=False, no copies of 4K frames); the frames must equal
    those of the copying path, also where the video is held or looped after its end."""
    from talkface.data.mel import melspectrogram
    from talkface.media.decode import read_audio

    outs = []
    for keep in (True, False):
        d = _dubber(DubConfig(detector="haar", long_audio=long_audio, chunk_frames=8, batch_size=2))
        d.detector = FixedDetector((10.0, 10.0, 60.0, 60.0))
        info, wav = probe(media["plain"]), read_audio(media["speech"], 16000)
        n_audio = int(np.ceil(len(wav) / 16000 * d.fps - 1e-6))
        blocks = list(d.iter_dubbed(media["plain"], info, melspectrogram(wav), n_audio, {}, keep_source=keep))
        assert all(len(b[0]) == 1 for b in blocks) and all((b[1] is None) != keep for b in blocks)
        outs.append(np.concatenate([b[0] for b in blocks]))
    assert len(outs[0]) == 25
    np.testing.assert_array_equal(outs[0], outs[1])


def test_dub_writes_playable_mp4_with_audio_duration(media, checkpoints, tmp_path):
    video = media.get("face", media["plain"])
    out = tmp_path / "sub" / "dubbed.mp4"
    rc = cli.main(["dub", "--video", str(video), "--audio", str(media["speech"]), "--out", str(out),
                   "--checkpoint", str(checkpoints), "--detector", "haar", "--quiet"])
    assert rc == 0 and out.is_file()
    info = probe(out)
    assert info.has_video and info.has_audio and info.fps == 25.0
    assert abs(info.duration - 1.0) < 0.1  # the audio's duration (the 0.6 s video is looped)
    assert info.channels == 2 and info.sample_rate == 48000  # the given audio is muxed as it is
    frames = read_frames(out)
    assert len(frames) == 25
    assert sorted(p.name for p in out.parent.iterdir()) == ["dubbed.mp4"]  # no temporary left behind


def test_short_audio_keeps_the_rest_of_the_video(media, tmp_path):
    """Audio (0.2 s) shorter than the video (0.6 s): output as long as the video, frames after the audio untouched."""
    short = tmp_path / "short.wav"
    _ffmpeg("-f", "lavfi", "-i", "sine=frequency=220:sample_rate=16000:duration=0.2", str(short))
    d = _dubber()
    d.detector = FixedDetector((10.0, 10.0, 60.0, 60.0))
    out, src, boxes, dubbed, stats, n_audio = _run(d, media["plain"], short)
    assert n_audio == 5 and len(out) == 15
    assert dubbed[:5].all() and not dubbed[5:].any()
    np.testing.assert_array_equal(out[5:], src[5:])


def test_no_face_passes_through(media, checkpoints, tmp_path):
    out = tmp_path / "plain_dub.mp4"
    rc = cli.main(["dub", "--video", str(media["plain"]), "--audio", str(media["plain"]), "--out", str(out),
                   "--checkpoint", str(checkpoints), "--detector", "haar", "--quiet"])
    assert rc == 0
    got = read_frames(out)
    ref_file = tmp_path / "reencoded.mp4"
    write_video(ref_file, read_frames(media["plain"]), fps=25, crf=18, preset="fast")
    want = read_frames(ref_file)
    assert got.shape == want.shape
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 2  # codec noise only


# ------------------------------------------------------------------------------------------------ bad input


def _bad(tmp_path: Path, capsys, video, audio, checkpoint, extra=()) -> str:
    out = tmp_path / "out" / "bad.mp4"
    args = ["dub", "--video", str(video), "--audio", str(audio), "--out", str(out), "--quiet", *extra]
    if checkpoint is not None:
        args += ["--checkpoint", str(checkpoint)]
    capsys.readouterr()
    assert cli.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("talkface dub: error:")
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())  # no partial or temporary file
    return err[0]


def test_bad_inputs(media, checkpoints, tmp_path, capsys):
    speech = media["speech"]
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video\n" * 50)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    long_clip = tmp_path / "long.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=64x64:r=25:d=4", "-c:v", "libx264", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", str(long_clip))
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(long_clip.read_bytes()[: long_clip.stat().st_size // 4])

    assert "file not found" in _bad(tmp_path, capsys, tmp_path / "missing.mp4", speech, checkpoints)
    assert "file not found" in _bad(tmp_path, capsys, media["plain"], tmp_path / "missing.wav", checkpoints)
    assert "unreadable" in _bad(tmp_path, capsys, text, speech, checkpoints)
    assert "zero length" in _bad(tmp_path, capsys, empty, speech, checkpoints)
    assert "unreadable" in _bad(tmp_path, capsys, garbage, speech, checkpoints)
    assert "truncated" in _bad(tmp_path, capsys, truncated, speech, checkpoints, ["--detector", "haar"])
    assert "no video stream" in _bad(tmp_path, capsys, speech, speech, checkpoints)
    assert "no audio stream" in _bad(tmp_path, capsys, media["plain"], media["mute"], checkpoints)
    assert NO_CHECKPOINT in _bad(tmp_path, capsys, media["plain"], speech, tmp_path / "nothing" / "generator.pt")


def test_pairs_mode_continues_after_a_bad_pair(media, checkpoints, tmp_path, capsys):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"video,audio,out\n{media['plain']},{media['speech']},good.mp4\n"
                     f"missing.mp4,{media['speech']},bad.mp4\n")
    rc = cli.main(["dub", "--pairs", str(pairs), "--checkpoint", str(checkpoints), "--detector", "haar", "--quiet"])
    assert rc == 1
    assert (tmp_path / "good.mp4").is_file() and not (tmp_path / "bad.mp4").exists()
    assert "1 of 2 pairs dubbed" in capsys.readouterr().out


class _Payload:
    """A pickle that would run code when loaded: `torch.load(weights_only=True)` must refuse it."""

    def __reduce__(self):
        return (print, ("this code ran",))


def test_checkpoints_that_are_not_state_dicts_are_refused_in_one_line(media, checkpoints, tmp_path, capsys):
    import pickle

    speech = media["speech"]
    bad = tmp_path / "bad"
    bad.mkdir()
    code = bad / "code.pt"
    torch.save({"generator": _Payload()}, code)
    truncated = bad / "truncated.pt"
    truncated.write_bytes(Path(checkpoints).read_bytes()[:2000])
    text = bad / "text.pt"
    text.write_text("not a checkpoint\n")
    foreign = bad / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    raw_pickle = bad / "raw.pt"
    raw_pickle.write_bytes(pickle.dumps(_Payload()))
    for path in (code, truncated, text, foreign, raw_pickle):
        msg = _bad(tmp_path, capsys, media["plain"], speech, path)
        assert f"cannot use checkpoint {path}" in msg, msg
        assert ("refused" in msg) == (path == code), msg  # pickled code is refused, the rest is unreadable
    assert "this code ran" not in capsys.readouterr().out


class OpeningDetector(FixedDetector):
    """FixedDetector with 68 landmarks whose inner lips open by `gap[t]` pixels at frame t."""

    def __init__(self, gap):
        super().__init__()
        self.gap = np.asarray(gap, np.float32)

    def detect(self, frames, start=0):
        out = []
        for i in range(len(frames)):
            t = start + i
            lm = np.tile(self.box[:2] + 50.0 + t, (68, 1)).astype(np.float32)
            lm[36:42, 0] -= 20  # the eyes 40 px apart (inter-ocular distance)
            lm[42:48, 0] += 20
            lm[65:68, 1] += self.gap[t]  # inner lower lip below the inner upper lip (61-63)
            out.append(Detection(self.box + t, 1.0, lm))
        return out


def test_reference_is_the_segments_most_closed_window(media, monkeypatch):
    from talkface.dubbing import generate
    from talkface.faces.crop import crop_frames
    from talkface.media.decode import read_frames

    gap = np.full(15, 20.0)
    gap[7:12] = 2.0  # frames 7-11 nearly closed
    seen = []
    real_reference = generate.LipSync.reference
    monkeypatch.setattr(generate.LipSync, "reference",
                        lambda self, crops: seen.append(crops.copy()) or real_reference(self, crops))
    for pick, want_start in (("closed", 7), ("first", 0)):
        seen.clear()
        d = _dubber(DubConfig(detector="haar", reference_pick=pick, norm_stats=NormStatsConfig(enabled=False)))
        d.detector = OpeningDetector(gap)
        _, _, boxes, _, stats, n = _run(d, media["plain"], media["speech"])
        frames = read_frames(media["plain"], 25)
        assert len(seen) == 1 and stats["references"] == 1
        assert d.openings[8] == pytest.approx(2.0 / 40)
        np.testing.assert_array_equal(seen[0][0], crop_frames(frames[want_start: want_start + 5],
                                                              boxes[want_start: want_start + 5], 96))


def test_norm_stats_come_from_the_videos_windows_and_leave_the_loaded_model(media, monkeypatch):
    import talkface.dub as dub_module
    from talkface.dubbing import generate
    from talkface.faces.crop import crop_frames
    from talkface.model_inputs import pose_input, to_float

    calls, used = [], []
    real_stats = dub_module.video_norm_stats
    monkeypatch.setattr(dub_module, "video_norm_stats",
                        lambda gen, pose, identity, mels, cfg: calls.append(pose.clone()) or real_stats(
                            gen, pose, identity, mels, cfg))
    real_generate = generate.LipSync.generate
    monkeypatch.setattr(generate.LipSync, "generate",
                        lambda self, *a: used.append(self.g_l) or real_generate(self, *a))
    d = _dubber(DubConfig(detector="haar", norm_stats=NormStatsConfig(enabled=True, windows=4)))
    d.detector = OpeningDetector(np.full(15, 5.0))
    loaded = {k: v.clone() for k, v in d.lips.g_l.state_dict().items()}
    _, _, boxes, _, _, n = _run(d, media["plain"], media["speech"])  # 15 video frames looped under 25 audio frames
    assert n == 25 and len(calls) == 1
    frames = read_frames(media["plain"], 25)
    # output starts 0, 7, 13, 20 of 25 frames: source windows 0, 7, 10 (13 clipped to the last whole window), 5
    want = torch.stack([pose_input(to_float(torch.from_numpy(crop_frames(frames[s: s + 5], boxes[s: s + 5], 96))))
                        for s in (0, 7, 10, 5)])
    torch.testing.assert_close(calls[0], want)
    assert used and all(g is not d.lips.g_l for g in used)  # the dub ran the re-normalised copy
    assert all(torch.equal(v, d.lips.g_l.state_dict()[k]) for k, v in loaded.items())
    calls.clear()
    d.cfg.norm_stats.enabled = False
    _run(d, media["plain"], media["speech"])
    assert not calls
