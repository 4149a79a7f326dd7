"""Fetch sources (folder, lrs2, hdtf plan, synthetic dispatch), splits, and the `talkface prepare` command."""

from __future__ import annotations

import socket
from pathlib import Path

import pandas as pd
import pytest

from talkface.cli import main as cli_main
from talkface.data import sources as src
from talkface.data.sources import (FetchConfig, HDTFSourceConfig, LRS2SourceConfig, SourceError, fetch, hdtf_plan,
                                   yt_dlp_command)
from talkface.data.splits import official_split, speaker_disjoint_split


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def test_folder_index_speakers_and_extensions(tmp_path):
    vids = tmp_path / "vids"
    for rel in ["alice/take1.mp4", "alice/take2.MOV", "bob/x.mkv", "bob/notes.txt", "solo.webm", "solo.avi",
                "deep/carol/y.mpg", ".hidden.mp4"]:
        touch(vids / rel)
    (vids / "bob" / "x.json").write_text("{}")  # a sidecar beside a video
    cfg = FetchConfig(source="folder")
    cfg.folder.input = str(vids)
    df = fetch(cfg, tmp_path / "raw")
    rows = df.set_index("clip_id")
    assert sorted(rows.index) == ["alice_take1", "alice_take2", "bob_x", "deep_carol_y", "solo", "solo_webm"]
    assert rows.loc["alice_take2", "speaker"] == "alice"
    assert rows.loc["deep_carol_y", "speaker"] == "carol"  # the parent folder
    assert rows.loc["solo", "speaker"] == "solo"  # flat: the file stem
    assert rows.loc["bob_x", "sidecar"].endswith("bob/x.json") and rows.loc["alice_take1", "sidecar"] == ""
    assert Path(rows.loc["bob_x", "video"]).is_absolute()  # referenced in place, not copied
    on_disk = pd.read_csv(tmp_path / "raw" / "index.csv", dtype=str, keep_default_na=False)
    assert list(on_disk.columns) == ["clip_id", "video", "speaker", "split", "sidecar"] and len(on_disk) == 6

    cfg.max_clips = 3
    sub1, sub2 = fetch(cfg, tmp_path / "r1"), fetch(cfg, tmp_path / "r2")
    assert len(sub1) == 3 and sub1["clip_id"].tolist() == sub2["clip_id"].tolist()

    cfg.folder.input = str(tmp_path / "nowhere")
    with pytest.raises(SourceError, match="not a directory"):
        fetch(cfg, tmp_path / "raw")


def test_folder_speaker_map_and_splits(tmp_path):
    vids = tmp_path / "vids"
    for rel in ["obama_1.mp4", "obama_2.mp4", "li.mp4", "noem.mp4"]:
        touch(vids / rel)
    cfg = FetchConfig(source="folder")
    cfg.folder.input = str(vids)
    cfg.folder.speakers = {"obama_1": "obama", "obama_2": "obama"}
    cfg.folder.splits = {"obama": "test"}
    cfg.folder.default_split = "train"
    rows = fetch(cfg, tmp_path / "raw").set_index("clip_id")
    assert rows.loc["obama_2", "speaker"] == "obama" and rows.loc["li", "speaker"] == "li"
    assert rows["split"].to_dict() == {"li": "train", "noem": "train", "obama_1": "test", "obama_2": "test"}
    cfg.folder.splits = {"obama": "holdout"}
    with pytest.raises(SourceError, match="train, val or test"):
        fetch(cfg, tmp_path / "raw2")


def test_mixed_source_joins_the_listed_sources(tmp_path):
    vids = tmp_path / "vids"
    touch(vids / "a.mp4")
    touch(vids / "b.mp4")
    lrs2 = tmp_path / "lrs2"
    touch(lrs2 / "main" / "spk" / "00001.mp4")
    (lrs2 / "train.txt").write_text("spk/00001\n")
    (lrs2 / "val.txt").write_text("")
    (lrs2 / "test.txt").write_text("")
    cfg = FetchConfig(source="mixed")
    cfg.folder.input, cfg.folder.default_split = str(vids), "test"
    cfg.lrs2.root = str(lrs2)
    cfg.mixed.sources = ["lrs2", "folder"]
    df = fetch(cfg, tmp_path / "raw")
    assert len(df) == 3 and set(df["speaker"]) == {"a", "b", "spk"}
    assert sorted(df["split"]) == ["test", "test", "train"]
    for bad in ([], ["folder", "mixed"], ["folder", "nope"]):
        cfg.mixed.sources = bad
        with pytest.raises(SourceError, match="mixed source"):
            fetch(cfg, tmp_path / "raw")
    cfg.mixed.sources = ["folder", "folder"]  # the same clips twice
    with pytest.raises(SourceError, match="duplicate clip ids"):
        fetch(cfg, tmp_path / "raw")


def test_lrs2_official_lists(tmp_path):
    root = tmp_path / "lrs2"
    for e in ["5535415699068794046/00001", "5535415699068794046/00002", "6300370419826092098/00001",
              "6330311066473698535/00011"]:
        touch(root / "main" / f"{e}.mp4")
    (root / "train.txt").write_text("5535415699068794046/00001\n5535415699068794046/00002\n0000/missing\n")
    (root / "val.txt").write_text("6300370419826092098/00001\n")
    (root / "test.txt").write_text("6330311066473698535/00011 NF\n")
    df = src.index_lrs2(LRS2SourceConfig(root=str(root)))
    rows = df.set_index("clip_id")
    assert rows.loc["5535415699068794046_00002", "split"] == "train"
    assert rows.loc["6300370419826092098_00001", "split"] == "val"
    assert rows.loc["6330311066473698535_00011", "split"] == "test"
    assert rows.loc["5535415699068794046_00001", "speaker"] == "5535415699068794046"
    assert len(df) == 4  # the missing listed video is skipped
    (root / "val.txt").unlink()
    with pytest.raises(SourceError, match="val.txt"):
        src.index_lrs2(LRS2SourceConfig(root=str(root)))


def hdtf_lists(d: Path) -> Path:
    d.mkdir()
    (d / "RD_video_url.txt").write_text("Radio11 https://www.youtube.com/watch?v=AAA\n"
                                        "Radio12 https://www.youtube.com/watch?v=BBB\n")
    (d / "RD_annotion_time.txt").write_text("Radio11.mp4 00:30-01:00 01:30-02:30\nRadio12.mp4 00:25-01:00\n"
                                            "Radio99.mp4 00:00-00:10\n")
    (d / "WDA_video_url.txt").write_text("WDA_BarackObama_000 https://www.youtube.com/watch?v=CCC\n")
    (d / "WDA_annotion_time.txt").write_text("WDA_BarackObama_000.mp4 1:02:03-1:02:13.5\n")
    return d


def test_hdtf_plan_and_command(tmp_path):
    lists = hdtf_lists(tmp_path / "HDTF_dataset")
    plan = hdtf_plan(lists, ["RD", "WDA"], tmp_path / "raw" / "hdtf")
    assert [p.clip_id for p in plan] == ["Radio11_0", "Radio11_1", "Radio12_0", "WDA_BarackObama_000_0"]
    p = plan[1]
    assert (p.url, p.start, p.end) == ("https://www.youtube.com/watch?v=AAA", 90.0, 150.0)
    assert p.out == tmp_path / "raw" / "hdtf" / "Radio11_1.mp4"
    assert plan[3].speaker == "WDA_BarackObama" and (plan[3].start, plan[3].end) == (3723.0, 3733.5)
    cmd = yt_dlp_command(p, HDTFSourceConfig())
    assert cmd[0] == "yt-dlp" and cmd[-1] == p.url
    assert cmd[cmd.index("--download-sections") + 1] == "*90-150"
    assert cmd[cmd.index("-o") + 1] == str(p.out)
    assert "--ffmpeg-location" in cmd
    with pytest.raises(SourceError, match="WRA_video_url.txt"):
        hdtf_plan(lists, ["WRA"], tmp_path)


def test_hdtf_offline_errors(tmp_path, monkeypatch):
    lists = hdtf_lists(tmp_path / "HDTF_dataset")
    cfg = FetchConfig(source="hdtf")
    cfg.hdtf.lists_dir = str(lists)
    cfg.hdtf.subsets = ["RD", "WDA"]
    cfg.hdtf.yt_dlp = "definitely-not-yt-dlp"
    with pytest.raises(SourceError) as exc:
        fetch(cfg, tmp_path / "raw")
    assert str(exc.value).startswith("hdtf not available: yt-dlp not found")

    monkeypatch.setattr(src.shutil, "which", lambda name: "/usr/bin/" + name)

    def no_network(*a, **k):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", no_network)
    with pytest.raises(SourceError) as exc:
        fetch(cfg, tmp_path / "raw")
    msg = str(exc.value)
    assert msg.startswith("hdtf not available: no network") and "\n" not in msg


def test_synthetic_dispatch(tmp_path):
    cfg = FetchConfig(source="synthetic")
    cfg.synthetic.identities, cfg.synthetic.clips_per_identity = 2, 1
    cfg.synthetic.seconds_per_clip, cfg.synthetic.frame_size = 1.2, 64
    df = fetch(cfg, tmp_path / "raw")
    assert len(df) == 2 and df["speaker"].nunique() == 2
    for row in df.itertuples():
        assert (tmp_path / "raw" / row.video).is_file() and (tmp_path / "raw" / row.sidecar).is_file()


def test_unknown_source(tmp_path):
    with pytest.raises(SourceError, match="unknown fetch source"):
        fetch(FetchConfig(source="youtube"), tmp_path)


# ----------------------------------------------------------------------------------------------------- splits


def test_speaker_disjoint_splits():
    clips = [f"s{s}_c{c}" for s in range(20) for c in range(5)]
    speakers = [c.split("_")[0] for c in clips]
    splits = speaker_disjoint_split(clips, speakers, (0.8, 0.1, 0.1), seed=3)
    assert sorted(sum(splits.values(), [])) == sorted(clips)
    owner = {}
    for name, ids in splits.items():
        for c in ids:
            spk = c.split("_")[0]
            assert owner.setdefault(spk, name) == name  # no speaker in two splits
    assert [len(splits[k]) for k in ("train", "val", "test")] == [80, 10, 10]
    assert splits == speaker_disjoint_split(clips, speakers, (0.8, 0.1, 0.1), seed=3)
    assert splits != speaker_disjoint_split(clips, speakers, (0.8, 0.1, 0.1), seed=4)
    few = speaker_disjoint_split(["a1", "a2", "b1"], ["a", "a", "b"], (0.8, 0.1, 0.1), seed=0)
    assert len(few["train"]) >= 1 and len(few["val"]) >= 1 and few["test"] == []
    assert official_split(["x", "y"], ["test", "train"]) == {"train": ["y"], "val": [], "test": ["x"]}


# -------------------------------------------------------------------------------------------------------- CLI


def test_cli_prepare_folder(tmp_path, capsys):
    from talkface.media.ffmpeg_bin import ffmpeg_exe
    import subprocess

    vids = tmp_path / "vids"
    vids.mkdir()
    subprocess.run([ffmpeg_exe(), "-y", "-loglevel", "error", "-f", "lavfi", "-i", "color=c=green:size=64x64:rate=25",
                    "-f", "lavfi", "-i", "sine=sample_rate=16000", "-t", "1.2", "-c:v", "libx264", "-pix_fmt",
                    "yuv420p", "-c:a", "aac", str(vids / "green.mp4")], check=True)
    (vids / "broken.mp4").write_text("not a video")
    out = tmp_path / "out"
    rc = cli_main(["prepare", "--source", "folder", "--input", str(vids), "--out", str(out), "--detector", "haar",
                   "--quiet"])
    assert rc == 0
    manifest = pd.read_csv(out / "clips" / "manifest.csv", keep_default_na=False)
    assert dict(zip(manifest["clip_id"], manifest["reason"].str.split(" ").str[:2].str.join(" "))) == {
        "broken": "unreadable file", "green": "no face"}
    assert (out / "splits" / "train.txt").is_file()
    assert "kept 0 of 2" in capsys.readouterr().out

    rc = cli_main(["prepare", "--source", "folder", "--input", str(tmp_path / "nope"), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("talkface prepare: error:") and "not a directory" in err and "\n" not in err
