"""Crop/paste-back, and the crop stage: kept clips, rejection reasons, resume, workers, real samples."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from talkface.data import prepare as prep
from talkface.data.prepare import CropConfig, prepare, reason_category
from talkface.data.splits import read_split
from talkface.data.store import INDEX_COLUMNS, read_clip, read_manifest
from talkface.faces.crop import crop_frames, feather_mask, paste_back
from talkface.media.ffmpeg_bin import ffmpeg_exe


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", *args], check=True)


# ---------------------------------------------------------------------------------------------- crop / paste


def test_crop_frames_exact_when_no_resize():
    frames = np.random.default_rng(0).integers(0, 256, (2, 60, 80, 3), dtype=np.uint8)
    boxes = np.array([[10, 5, 42, 37], [40, 20, 72, 52]], np.float32)
    crops = crop_frames(frames, boxes, 32)
    np.testing.assert_array_equal(crops[0], frames[0, 5:37, 10:42])
    np.testing.assert_array_equal(crops[1], frames[1, 20:52, 40:72])
    assert crop_frames(frames, boxes, 16).shape == (2, 16, 16, 3)


def test_feather_mask_and_paste_back():
    m = feather_mask(40, 40, 0.25)
    assert m[20, 20] == 1.0 and m[0, 0] < 0.01 and m[0, 20] < 0.05
    np.testing.assert_allclose(m, m[::-1, ::-1])
    frame = np.zeros((100, 100, 3), np.uint8)
    crop = np.full((20, 20, 3), 200, np.uint8)
    box = np.array([30, 30, 70, 70], np.float32)
    hard = paste_back(frame, crop, box, feather=0.0)
    assert (hard[30:70, 30:70] == 200).all() and hard[:30].sum() == 0 and hard[70:].sum() == 0
    soft = paste_back(frame, crop, box, feather=0.25)
    assert soft[50, 50, 0] == 200 and soft[30, 30, 0] < 10 and soft[:30].sum() == 0
    lower = paste_back(frame, crop, box, feather=0.0, region="lower")
    assert lower[30:50].sum() == 0 and (lower[50:70, 30:70] == 200).all()


# ------------------------------------------------------------------------------------------------ the stage


def make_clip(path: Path, seconds=2.0, fps=30, size="160x120", audio=True, src="testsrc") -> Path:
    sep = "=" if src == "testsrc" else ":"  # testsrc takes options; color=c=red adds more with ':'
    args = ["-f", "lavfi", "-i", f"{src}{sep}size={size}:rate={fps}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=300:sample_rate=44100"]
    args += ["-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    if audio:
        args += ["-c:a", "aac"]
    ffmpeg(*args, str(path))
    return path


def write_index(raw: Path, rows: list[dict]) -> None:
    pd.DataFrame([{**{c: "" for c in INDEX_COLUMNS}, **r} for r in rows], columns=INDEX_COLUMNS).to_csv(
        raw / "index.csv", index=False)


def annotated_clip(raw: Path, clip_id: str, speaker: str, seconds=1.2) -> dict:
    """A 25 fps test video with a sidecar whose boxes drift, and a closed-lip npz, like the synthetic source."""
    from talkface.data.synthetic import save_npz

    make_clip(raw / f"{clip_id}.mp4", seconds=seconds, fps=25)
    T = int(round(seconds * 25))
    boxes = [[40 + t, 30, 100 + t, 90] for t in range(T)]
    lms = [[[70 + t, 60 + j % 10] for j in range(68)] for t in range(T)]
    silent = np.random.default_rng(1).integers(0, 256, (T, 120, 160, 3), dtype=np.uint8)
    save_npz(raw / f"{clip_id}.silent.npz", frames=silent)
    (raw / f"{clip_id}.json").write_text(json.dumps({"clip_id": clip_id, "speaker": speaker, "fps": 25,
                                                     "boxes": boxes, "landmarks": lms,
                                                     "silent": f"{clip_id}.silent.npz"}))
    return dict(clip_id=clip_id, video=f"{clip_id}.mp4", speaker=speaker, sidecar=f"{clip_id}.json")


def small_cfg(**kw) -> CropConfig:
    cfg = CropConfig(detector="annotations", size=32, min_frames=10, smooth_window=1, pads=[0.0, 0.0, 0.0, 0.0])
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def test_kept_clip_outputs(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_index(raw, [annotated_clip(raw, "a1", "alice"), annotated_clip(raw, "b1", "bob")])
    manifest = prepare(raw, tmp_path / "clips", tmp_path / "splits", small_cfg(), source="synthetic", progress=False)
    assert manifest["status"].tolist() == ["kept", "kept"]
    clip = read_clip(tmp_path / "clips", "a1")
    assert clip.frames.shape == (30, 32, 32, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.dtype == np.float32 and clip.audio.shape == (30 * 640,)
    np.testing.assert_allclose(clip.boxes[3], [43, 30, 103, 90])  # sidecar box, already square
    # landmark (73, 60 + j%10) of frame 3 in a 60 px box scaled to 32 px
    np.testing.assert_allclose(clip.landmarks[3, 0], [(73 - 43 + 0.5) * 32 / 60 - 0.5, (60 - 30 + 0.5) * 32 / 60 - 0.5],
                               atol=1e-4)
    from talkface.data.synthetic import load_silent

    silent_full = load_silent(raw / "a1.silent.npz")
    np.testing.assert_array_equal(clip.silent, crop_frames(silent_full, clip.boxes, 32))
    assert clip.meta["n_frames"] == 30 and clip.meta["fps"] == 25 and clip.meta["detector"] == "annotations"
    assert clip.meta["source"] == "synthetic" and clip.meta["sample_rate"] == 16000
    on_disk = read_manifest(tmp_path / "clips" / "manifest.csv")
    assert list(on_disk.columns) == ["clip_id", "source", "status", "reason", "n_frames", "speaker", "detector"]
    splits = {s: read_split(tmp_path / "splits", s) for s in ("train", "val", "test")}
    assert sorted(sum(splits.values(), [])) == ["a1", "b1"]
    assert not any(len(v) == 2 for v in splits.values())  # two speakers never share a split


def test_rejection_reasons(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = make_clip(raw / "good.mp4", seconds=1.0)
    (raw / "trunc.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    (raw / "text.mp4").write_text("hello, I am a text file\n" * 50)
    make_clip(raw / "noaudio.mp4", seconds=1.0, audio=False)
    make_clip(raw / "plain.mp4", seconds=1.2, src="color=c=0x3060a0")
    make_clip(raw / "short.mp4", seconds=0.2, src="color=c=gray")
    ffmpeg("-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000", "-t", "0.5", str(raw / "sound.wav"))
    ids = ["trunc", "text", "noaudio", "plain", "short", "sound", "missing"]
    write_index(raw, [dict(clip_id=i, video=f"{i}.wav" if i == "sound" else f"{i}.mp4", speaker=i) for i in ids])
    cfg = CropConfig(detector="haar", min_frames=10)
    manifest = prepare(raw, tmp_path / "clips", tmp_path / "splits", cfg, source="folder", progress=False)
    reasons = dict(zip(manifest["clip_id"], manifest["reason"]))
    assert (manifest["status"] == "rejected").all()
    assert reasons["trunc"].startswith("unreadable file")
    assert reasons["text"].startswith("unreadable file")
    assert reasons["noaudio"] == "no audio stream"
    assert reasons["plain"].startswith("no face in 100% of frames")
    assert reasons["short"].startswith("too short: 5 frames")
    assert reasons["sound"] == "no video stream"
    assert reasons["missing"] == "file not found"
    assert {reason_category(r) for r in reasons.values()} == {
        "unreadable file", "no audio stream", "no face", "too short", "no video stream", "file not found"}
    assert not [p for p in (tmp_path / "clips").iterdir() if p.is_dir()]  # nothing half-written


def test_resume_skips_done_clips(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    write_index(raw, [annotated_clip(raw, f"c{i}", f"s{i}", seconds=0.6) for i in range(3)])
    clips = tmp_path / "clips"
    calls = []
    real = prep.process_clip
    monkeypatch.setattr(prep, "process_clip", lambda task: calls.append(task[0]["clip_id"]) or real(task))
    prepare(raw, clips, tmp_path / "splits", small_cfg(), progress=False)
    assert sorted(calls) == ["c0", "c1", "c2"]
    frames_before = (clips / "c0" / "frames.npy").stat().st_mtime_ns

    # an interruption: c1 never finished (its folder and journal line missing), a temp folder left behind
    import shutil

    shutil.rmtree(clips / "c1")
    journal = clips / ".journal.jsonl"
    journal.write_text("".join(ln + "\n" for ln in journal.read_text().splitlines() if '"c1"' not in ln))
    (clips / ".tmp-c1-999").mkdir()
    calls.clear()
    manifest = prepare(raw, clips, tmp_path / "splits", small_cfg(), progress=False)
    assert calls == ["c1"]
    assert (manifest["status"] == "kept").all() and not (clips / ".tmp-c1-999").exists()
    assert (clips / "c0" / "frames.npy").stat().st_mtime_ns == frames_before

    calls.clear()
    prepare(raw, clips, tmp_path / "splits", small_cfg(), progress=False)
    assert calls == []  # all done
    prepare(raw, clips, tmp_path / "splits", small_cfg(size=24), progress=False)
    assert sorted(calls) == ["c0", "c1", "c2"]  # a setting that shapes the crops changed: redo
    assert np.load(clips / "c0" / "frames.npy").shape[1] == 24


def test_workers_match_serial(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rows = [annotated_clip(raw, f"w{i}", f"s{i}", seconds=0.6) for i in range(2)]
    write_index(raw, rows)
    m = prepare(raw, tmp_path / "par", tmp_path / "splits", small_cfg(workers=2), progress=False)
    assert (m["status"] == "kept").all()
    for row in rows:  # the same crops as one in-process run
        np.testing.assert_array_equal(np.load(tmp_path / "par" / row["clip_id"] / "frames.npy"),
                                      prep.build_clip(row, raw, small_cfg()).frames)


def test_real_samples_folder_haar(real_samples, tmp_path):
    """Folder source + haar on short cuts of two real videos (one 30 fps, one 25 fps): faces found, 25 fps crops."""
    from talkface.data.sources import FetchConfig, fetch
    from talkface.media.probe import probe

    videos = tmp_path / "videos"
    videos.mkdir()
    for name, secs in (("vrt_face_4", 1.2), ("vrt_face_2", 0.8)):  # 700x700 @ 30 fps, 844x844 @ 25 fps
        ffmpeg("-i", str(real_samples / f"{name}.mp4"), "-t", str(secs), "-c:v", "libx264", "-preset", "ultrafast",
               "-c:a", "aac", str(videos / f"{name}.mp4"))
    fetch_cfg = FetchConfig(source="folder")
    fetch_cfg.folder.input = str(videos)
    fetch(fetch_cfg, tmp_path / "raw")
    t0 = time.perf_counter()
    cfg = CropConfig(detector="haar", min_frames=10)
    manifest = prepare(tmp_path / "raw", tmp_path / "clips", tmp_path / "splits", cfg, source="folder",
                       progress=False)
    elapsed = time.perf_counter() - t0
    assert (manifest["status"] == "kept").all(), manifest["reason"].tolist()
    for name in ("vrt_face_4", "vrt_face_2"):
        info = probe(videos / f"{name}.mp4")
        clip = read_clip(tmp_path / "clips", name)
        assert abs(clip.meta["n_frames"] - info.duration * 25) <= 1.5, (name, clip.meta["n_frames"], info.duration)
        assert clip.frames.shape[1:] == (96, 96, 3)
        assert clip.meta["detected_frames"] >= 0.9 * clip.meta["n_frames"]
        assert np.isnan(clip.landmarks).all()  # haar gives no landmarks
        # the crop is a face, not background: its centre differs from the frame corner colour statistics
        assert clip.frames[:, 30:66, 30:66].std() > 10
    assert probe(videos / "vrt_face_4.mp4").fps == pytest.approx(30, abs=0.5)
    print(f"haar crop: {manifest['n_frames'].sum()} frames in {elapsed:.1f} s")
