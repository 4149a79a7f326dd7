"""The synthetic talking-head source: files and contract, A/V lengths, mouth vs speech, landmarks, determinism."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from talkface.data import face_render as fr
from talkface.data.speech import frame_rms
from talkface.data.synthetic import SyntheticConfig, generate, identity_voice, load_silent, make_clip
from talkface.media.ffmpeg_bin import ffmpeg_exe

TINY = SyntheticConfig(seed=7, identities=2, clips_per_identity=1, seconds_per_clip=1.5, frame_size=96)
SIDECAR_KEYS = ["clip_id", "speaker", "fps", "sample_rate", "size", "text", "boxes", "landmarks", "mouth_open",
                "phonemes", "silent"]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth")
    return out, generate(out, TINY)


def _decode(path: Path, size: int, sr: int):
    run = lambda *a: subprocess.run([ffmpeg_exe(), "-v", "error", "-i", str(path), *a, "-"],  # noqa: E731
                                    check=True, capture_output=True).stdout
    video = np.frombuffer(run("-f", "rawvideo", "-pix_fmt", "rgb24"), np.uint8).reshape(-1, size, size, 3)
    audio = np.frombuffer(run("-vn", "-f", "f32le", "-ac", "1", "-ar", str(sr)), np.float32)
    return video, audio


def test_files_index_and_sidecar(tiny):
    out, df = tiny
    assert list(df.columns) == ["clip_id", "video", "speaker", "split", "sidecar"]
    assert list(df.clip_id) == ["s01_c001", "s02_c001"] and list(df.speaker) == ["s01", "s02"]
    on_disk = pd.read_csv(out / "index.csv", keep_default_na=False)
    assert on_disk.equals(df)
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.csv"] + [f"{c}{ext}" for c in df.clip_id for ext in (".mp4", ".json", ".silent.npz")])
    side = json.loads((out / "s01_c001.json").read_text())
    assert list(side) == SIDECAR_KEYS
    t = round(TINY.seconds_per_clip * TINY.fps)
    assert side["fps"] == 25 and side["sample_rate"] == 16000 and side["size"] == [96, 96]
    assert len(side["boxes"]) == len(side["mouth_open"]) == len(side["landmarks"]) == t
    assert np.array(side["landmarks"]).shape == (t, 68, 2)
    assert side["phonemes"] and all(0 <= p["start"] < p["end"] <= 1.5 for p in side["phonemes"])
    assert load_silent(out / side["silent"]).shape == (t, 96, 96, 3)


def _lagged_r(a, b, lag):
    """Pearson r of a[t + lag] with b[t]."""
    n = len(a)
    return np.corrcoef(a[max(0, lag):n + min(0, lag)], b[max(0, -lag):n + min(0, -lag)])[0, 1]


def test_audio_matches_video_and_mouth_follows_speech(tiny):
    out, df = tiny
    lag_r = np.zeros(5)
    for cid in df.clip_id:
        side = json.loads((out / f"{cid}.json").read_text())
        video, audio = _decode(out / f"{cid}.mp4", 96, 16000)
        t = len(side["mouth_open"])
        assert len(video) == t
        assert abs(len(audio) - t * 640) <= 640  # within one frame
        rms = frame_rms(audio, 16000, 25, t)
        r = np.corrcoef(side["mouth_open"], rms)[0, 1]
        assert r > 0.3, f"{cid}: mouth_open vs audio RMS r={r:.2f}"
        lag_r += [_lagged_r(np.array(side["mouth_open"]), rms, lag) / len(df) for lag in range(-2, 3)]
    # in sync: shifting the mouth by 2 frames either way fits the audio worse, and lag 0 is (about) the best
    assert lag_r[2] > lag_r[0] + 0.1 and lag_r[2] > lag_r[4] + 0.1 and lag_r[2] >= lag_r.max() - 0.05, lag_r


def test_lips_closed_on_silence_and_bilabials():
    clip, other = make_clip(TINY, 0, 0), make_clip(TINY, 1, 0)
    mouth = np.array(clip.sidecar["mouth_open"])
    rms = frame_rms(clip.audio, 16000, 25, len(mouth))
    quiet = rms < 3 * TINY.noise_level  # the noise floor alone has RMS noise_level
    # silent frames 2 frames away from sound (1 of anticipation + the viseme lead): lips shut, and the frame is
    # exactly the closed-lip render
    padded = np.pad(quiet, 2, constant_values=True)
    deep = np.all([padded[k:k + len(quiet)] for k in range(5)], axis=0)
    assert deep.sum() >= 3 and quiet.sum() < len(quiet)  # the clip has both silence and speech
    assert np.all(mouth[deep] == 0)
    assert np.array_equal(clip.frames[deep], clip.silent[deep])
    assert not np.array_equal(clip.frames[mouth > 0.3], clip.silent[mouth > 0.3])
    lm = np.array(clip.sidecar["landmarks"])
    assert np.allclose(lm[deep, 66, 1] - lm[deep, 62, 1], 0, atol=0.02)
    # bilabials: the frame at the middle of every p/b/m (moved by the viseme lead) is closed
    n_checked = 0
    for c in (clip, other):
        mids = [int(((p["start"] + p["end"]) / 2 - TINY.viseme_lead) * 25) for p in c.sidecar["phonemes"]
                if p["phoneme"] in ("p", "b", "m")]
        assert all(c.sidecar["mouth_open"][f] == 0 for f in mids)
        n_checked += len(mids)
    assert n_checked > 0


def test_landmarks_inside_box_and_follow_the_mouth():
    clip = make_clip(TINY, 1, 0)
    lm = np.array(clip.sidecar["landmarks"])  # [T, 68, 2]
    box = np.array(clip.sidecar["boxes"])  # [T, 4]
    assert np.all(lm[..., 0] >= box[:, None, 0] - 0.01) and np.all(lm[..., 0] <= box[:, None, 2] + 0.01)
    assert np.all(lm[..., 1] >= box[:, None, 1] - 0.01) and np.all(lm[..., 1] <= box[:, None, 3] + 0.01)
    mouth = np.array(clip.sidecar["mouth_open"])
    gap = np.linalg.norm(lm[:, 66] - lm[:, 62], axis=1)  # inner lips, centre
    assert np.corrcoef(mouth, gap)[0, 1] > 0.95
    # what is drawn agrees: between the inner lips of an open mouth it is dark, not skin
    luma = clip.frames.astype(np.float64) @ [0.299, 0.587, 0.114]
    for t in np.flatnonzero(mouth > 0.6):
        x, y = np.round((lm[t, 62] + lm[t, 66]) / 2).astype(int)
        cx, cy = np.round((lm[t, 3] + lm[t, 48]) / 2).astype(int)  # cheek
        assert luma[t, y, x] < 0.6 * luma[t, cy, cx]


def test_viseme_table():
    assert fr.viseme("p")[0] == fr.viseme("'m")[0] == 0.0
    assert fr.viseme("'aI2")[0] > 0.8 and fr.viseme("t#")[0] < 0.3
    assert fr.viseme("u:")[2] > fr.viseme("i:")[2] and fr.viseme("i:")[1] > fr.viseme("u:")[1]


def test_deterministic_from_seed(tiny, tmp_path):
    out, _ = tiny
    again = tmp_path / "again"
    generate(again, TINY, workers=1)
    for name in ("s01_c001.json", "s02_c001.json", "s01_c001.silent.npz", "s01_c001.mp4", "index.csv"):
        assert (out / name).read_bytes() == (again / name).read_bytes(), name
    other = dict(TINY.__dict__, seed=8)
    a, b = make_clip(TINY, 0, 0), make_clip(SyntheticConfig(**other), 0, 0)
    assert a.sidecar["text"] != b.sidecar["text"] or a.sidecar["mouth_open"] != b.sidecar["mouth_open"]
    assert not np.array_equal(a.frames, b.frames)


def test_identities_differ(tiny):
    out, _ = tiny
    a, b = (load_silent(out / f"s0{i}_c001.silent.npz")[0].astype(np.float64) for i in (1, 2))
    assert np.abs(a - b).mean() > 10
    assert identity_voice(TINY, 0) != identity_voice(TINY, 1)
    assert fr.random_identity(np.random.default_rng(0)) != fr.random_identity(np.random.default_rng(1))
