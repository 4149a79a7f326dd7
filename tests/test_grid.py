"""The GRID source: align parser, per-frame labels, sentence split, both layouts, the download plan and the download
path against a local HTTP server, and the crop stage keeping labels and dlib landmarks of real faces."""

from __future__ import annotations

import functools
import http.server
import io
import socket
import subprocess
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from talkface.data.grid import (GridSourceConfig, Word, download_grid, frame_labels, grid_download_plan, index_grid,
                                read_align, sentence_split)
from talkface.data.store import SourceError
from talkface.media.ffmpeg_bin import ffmpeg_exe

SHARED = Path(__file__).resolve().parents[2] / "shared"
ALIGN = "0 17250 sil\n17250 22500 bin\n22500 26500 blue\n26500 74500 sil\n"


def test_read_align_times_in_seconds(tmp_path):
    p = tmp_path / "a.align"
    p.write_text(ALIGN)
    words = read_align(p)
    assert words[0] == Word("sil", 0.0, 0.69)
    assert words[1] == Word("bin", 0.69, 0.9)
    assert words[-1].end == pytest.approx(2.98)


@pytest.mark.parametrize("bad", ["0 10\n", "0 x sil\n", "20 10 bin\n"])
def test_read_align_rejects_malformed_lines(tmp_path, bad):
    p = tmp_path / "bad.align"
    p.write_text(bad)
    with pytest.raises(SourceError, match="bad.align:1"):
        read_align(p)


def test_frame_labels_at_frame_centres():
    # 'bin' covers 0.69-0.90 s: frame centres (t + 0.5) / 25 = 0.70 (t=17) ... 0.86 (t=21) fall inside, 0.90 (t=22) not
    labels = frame_labels([Word("sil", 0.0, 0.69), Word("bin", 0.69, 0.9), Word("sil", 0.9, 3.0)], 75, 25.0)
    assert len(labels) == 75
    assert [t for t, w in enumerate(labels) if w == "bin"] == [17, 18, 19, 20, 21]
    assert labels[0] == labels[74] == "sil"
    assert frame_labels([], 3, 25.0) == ["sil"] * 3  # outside every word: silence


def test_sentence_split_is_seeded_and_covers_every_split():
    ids = [f"s{i:03d}" for i in range(100)]
    a, b = sentence_split(ids, [0.8, 0.1, 0.1], 0), sentence_split(ids, [0.8, 0.1, 0.1], 0)
    assert a == b and set(a) == set(ids)
    counts = {k: sum(v == k for v in a.values()) for k in ("train", "val", "test")}
    assert counts == {"train": 80, "val": 10, "test": 10}
    assert sentence_split(ids, [0.8, 0.1, 0.1], 1) != a
    small = sentence_split(["a", "b", "c"], [0.8, 0.1, 0.1], 0)  # every split asked for gets one
    assert sorted(small.values()) == ["test", "train", "val"]


def _make_clip(path: Path, seconds: float = 1.2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([ffmpeg_exe(), "-y", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc=size=64x48:rate=25", "-f", "lavfi", "-i", "sine=frequency=300:sample_rate=16000",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(path)], check=True)


@pytest.fixture(scope="module")
def tiny_grid(tmp_path_factory):
    """Two sentences of speaker s1 in the shared layout, one of s2 in the official archives' layout."""
    root = tmp_path_factory.mktemp("grid")
    for sid in ("bbaf2n", "bbaf3s"):
        _make_clip(root / "s1" / "video" / f"{sid}.mp4")
        (root / "s1" / "align").mkdir(parents=True, exist_ok=True)
        (root / "s1" / "align" / f"{sid}.align").write_text("0 10000 sil\n10000 20000 bin\n20000 30000 sil\n")
    _make_clip(root / "s2" / "lgaz8p.mpg".replace(".mpg", ".mp4"))
    (root / "s2" / "lgaz8p.mp4").rename(root / "s2" / "lgaz8p.mpg")
    (root / "s2" / "align").mkdir(parents=True)
    (root / "s2" / "align" / "lgaz8p.align").write_text("0 30000 sil\n")
    (root / "s2" / "align" / "nomovie.align").write_text("0 30000 sil\n")  # no video: skipped
    return root


def test_index_grid_both_layouts_and_splits(tiny_grid):
    df = index_grid(GridSourceConfig(root=str(tiny_grid), speakers=["s1", "s2"], split_fractions=[1, 1, 1]))
    assert df["clip_id"].tolist() == ["s1_bbaf2n", "s1_bbaf3s", "s2_lgaz8p"]
    assert df["speaker"].tolist() == ["s1", "s1", "s2"]
    assert df["sidecar"].str.endswith(".align").all()
    assert df.loc[2, "video"].endswith("s2/lgaz8p.mpg")
    assert set(df["split"]) <= {"train", "val", "test"} and (df["split"] != "").all()
    by_speaker = index_grid(GridSourceConfig(root=str(tiny_grid), speakers=["s1"], split="speaker"))
    assert (by_speaker["split"] == "").all()  # the crop stage makes the speaker-disjoint split


def test_index_grid_missing_speaker_is_one_clear_line(tiny_grid):
    with pytest.raises(SourceError) as e:
        index_grid(GridSourceConfig(root=str(tiny_grid), speakers=["s3"]))
    assert "no sentences of speaker s3" in str(e.value) and "\n" not in str(e.value)


def test_grid_download_plan_uses_the_official_archives(tmp_path):
    plan = grid_download_plan(["s1", "s34"], tmp_path, "https://spandh.dcs.shef.ac.uk/gridcorpus/")
    assert [p.url for p in plan] == [
        "https://spandh.dcs.shef.ac.uk/gridcorpus/s1/video/s1.mpg_vcd.zip",
        "https://spandh.dcs.shef.ac.uk/gridcorpus/s1/align/s1.tar",
        "https://spandh.dcs.shef.ac.uk/gridcorpus/s34/video/s34.mpg_vcd.zip",
        "https://spandh.dcs.shef.ac.uk/gridcorpus/s34/align/s34.tar"]
    assert plan[0].extract_to == tmp_path and plan[1].extract_to == tmp_path / "s1"
    with pytest.raises(SourceError, match="s21"):
        grid_download_plan(["s21"], tmp_path, "http://x")


def _archives(tmp_path: Path) -> Path:
    """The official archives of one speaker, served from tmp_path/www/s4/{video,align}/."""
    clip = tmp_path / "clip.mp4"
    _make_clip(clip)
    www = tmp_path / "www"
    (www / "s4" / "video").mkdir(parents=True)
    (www / "s4" / "align").mkdir(parents=True)
    with zipfile.ZipFile(www / "s4" / "video" / "s4.mpg_vcd.zip", "w") as z:
        z.write(clip, "s4/bwbg1a.mpg")
    with tarfile.open(www / "s4" / "align" / "s4.tar", "w") as t:
        data = ALIGN.encode()
        info = tarfile.TarInfo("align/bwbg1a.align")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    return www


def test_download_grid_from_a_local_server(tmp_path):
    www = _archives(tmp_path)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        root = tmp_path / "grid"
        cfg = GridSourceConfig(root=str(root), speakers=["s4"], download=True,
                               url_base=f"http://127.0.0.1:{server.server_address[1]}")
        df = index_grid(cfg)
    finally:
        server.shutdown()
    assert df["clip_id"].tolist() == ["s4_bwbg1a"]
    assert (root / "s4" / "bwbg1a.mpg").is_file() and (root / "s4" / "align" / "bwbg1a.align").is_file()
    assert not (root / ".downloads").exists()


def test_download_grid_offline_fails_in_one_line(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SourceError) as e:
        download_grid(["s1"], tmp_path, f"http://127.0.0.1:{port}", progress=False)
    assert str(e.value).startswith("grid not available:") and "\n" not in str(e.value)


class _CentreFace:
    """Test double for a detector: the same face box in every frame (testsrc has no face)."""

    name = "centre"

    def detect(self, frames, start=0):
        from talkface.faces.detect import Detection

        h, w = frames.shape[1:3]
        return [Detection(np.array([w * 0.25, h * 0.25, w * 0.75, h * 0.75], np.float32), 1.0, None)
                for _ in frames]


def test_prepare_grid_keeps_labels_and_splits(tiny_grid, tmp_path, monkeypatch):
    from talkface.data import prepare as prepare_mod
    from talkface.data.prepare import CropConfig, prepare
    from talkface.data.sources import FetchConfig, fetch
    from talkface.data.store import read_clip

    monkeypatch.setattr(prepare_mod, "make_detector", lambda *a, **k: _CentreFace())
    monkeypatch.setattr(prepare_mod, "_DETECTOR_CACHE", {})
    raw = tmp_path / "raw"
    fetch(FetchConfig(source="grid", grid=GridSourceConfig(root=str(tiny_grid), speakers=["s1", "s2"],
                                                           split_fractions=[1, 1, 1])), raw)
    manifest = prepare(raw, tmp_path / "clips", tmp_path / "splits", CropConfig(detector="haar", size=32,
                                                                                 min_frames=10), progress=False)
    assert (manifest["status"] == "kept").all() and len(manifest) == 3
    # 1.2 s at 25 fps; 'bin' spans 0.4-0.8 s: frame centres (t + 0.5) / 25 of t = 10..19
    lab = read_clip(tmp_path / "clips", "s1_bbaf2n").labels
    assert len(lab) == 30 and [t for t, w in enumerate(lab) if w == "bin"] == list(range(10, 20))
    assert read_clip(tmp_path / "clips", "s2_lgaz8p").labels == ["sil"] * 30
    # the sentence split of fetch is the split the crop stage writes
    splits = {n: (tmp_path / "splits" / f"{n}.txt").read_text().split() for n in ("train", "val", "test")}
    assert sorted(sum(splits.values(), [])) == ["s1_bbaf2n", "s1_bbaf3s", "s2_lgaz8p"]


@pytest.mark.skipif(not (SHARED / "grid" / "s1").is_dir(), reason="../shared/grid absent")
def test_prepare_real_grid_sentences_with_dlib(tmp_path):
    pytest.importorskip("dlib")
    from talkface.cli import main as cli_main
    from talkface.data.store import read_clip, read_manifest

    out = tmp_path / "g"
    rc = cli_main(["prepare", "--source", "grid", "--input", str(SHARED / "grid"), "--out", str(out),
                   "--detector", "dlib", "--max-clips", "2", "--quiet", "--workers", "1"])
    assert rc == 0
    manifest = read_manifest(out / "clips" / "manifest.csv")
    assert (manifest["status"] == "kept").all() and len(manifest) == 2
    clip = read_clip(out / "clips", manifest["clip_id"][0])
    assert len(clip.labels) == len(clip.frames) == 75
    assert clip.labels[0] == "sil" and any(w != "sil" for w in clip.labels)
    lms = clip.landmarks
    assert np.isfinite(lms).all()
    # a face crop: mouth (48-67) below the eyes (36-47), both inside the 96 px crop
    assert (lms[:, 48:68, 1].mean(axis=1) > lms[:, 36:48, 1].mean(axis=1) + 15).all()
    assert lms.min() > -2 and lms.max() < 98
