"""The window dataset serves aligned frames and mel windows, deterministically."""

import json

import numpy as np
import pytest
import torch

from talkface.data.windows import WindowConfig, WindowDataset


def _make_clip(root, clip_id, n_frames, size=16):
    """A clip whose frame t has pixel value t and whose mel row m has value m (so alignment is readable)."""
    d = root / "clips" / clip_id
    d.mkdir(parents=True)
    frames = np.broadcast_to(np.arange(n_frames, dtype=np.uint8)[:, None, None, None], (n_frames, size, size, 3))
    np.save(d / "frames.npy", np.ascontiguousarray(frames))
    np.save(d / "landmarks.npy", np.full((n_frames, 68, 2), np.nan, dtype=np.float32))
    np.save(d / "silent.npy", np.ascontiguousarray(frames))
    (d / "meta.json").write_text(json.dumps({"clip_id": clip_id, "n_frames": n_frames, "sample_rate": 16000}))
    n_mel = int(n_frames * 80 / 25) + 1
    (root / "mels").mkdir(exist_ok=True)
    np.save(root / "mels" / f"{clip_id}.npy", np.repeat(np.arange(n_mel, dtype=np.float32)[:, None], 80, axis=1))


@pytest.fixture
def store(tmp_path):
    _make_clip(tmp_path, "a", 40)
    _make_clip(tmp_path, "b", 60)
    return tmp_path


def test_items_are_aligned(store):
    ds = WindowDataset(store / "clips", store / "mels", ["a", "b"], WindowConfig(), seed=1, with_silent=True)
    for i in range(50):
        item = ds[i]
        f, k = item["start"], 5
        frame_ids = (item["frames"][:, 0, 0, 0] * 255).round().long().tolist()
        assert frame_ids == list(range(f, f + k))
        assert item["mel"].shape == (1, 80, 16)
        assert item["mel"][0, 0, 0].item() == int(80 * f / 25)  # METHOD.md §1 window start
        assert item["mel"][0, 0, 15].item() == int(80 * f / 25) + 15
        starts = item["indiv_mels"][:, 0, 0, 0].tolist()
        assert starts == [int(80 * (j - 2) / 25) for j in range(f, f + k)]  # centred per-frame windows
        ident = int(round(item["identity"][0, 0, 0, 0].item() * 255))
        assert abs(ident - f) >= k  # identity reference does not overlap the target window
        neg_first = int(item["neg_mel"][0, 0, 0].item())
        neg_frame = [t for t in range(100) if int(80 * t / 25) == neg_first][0]
        assert abs(neg_frame - f) >= k  # sync negative does not overlap
        assert torch.all(item["pose"][:, :, 8:, :] == 0) and torch.equal(item["pose"][:, :, :8], item["frames"][:, :, :8])
        assert torch.equal(item["identity_silent"], item["identity"])


def test_deterministic_and_seed_dependent(store):
    a = WindowDataset(store / "clips", store / "mels", ["a", "b"], WindowConfig(), seed=3)
    b = WindowDataset(store / "clips", store / "mels", ["a", "b"], WindowConfig(), seed=3)
    c = WindowDataset(store / "clips", store / "mels", ["a", "b"], WindowConfig(), seed=4)
    assert [a[i]["start"] for i in range(20)] == [b[i]["start"] for i in range(20)]
    assert [a[i]["start"] for i in range(20)] != [c[i]["start"] for i in range(20)]


def test_windows_cover_all_clips_uniformly(store):
    ds = WindowDataset(store / "clips", store / "mels", ["a", "b"], WindowConfig(), seed=0)
    clips = np.array([ds.locate(i)[0] for i in range(2000)])
    expected_b = (ds.valid[1][1] - ds.valid[1][0] + 1) / ds.n_windows
    assert abs(clips.mean() - expected_b) < 0.05


def test_too_short_clip_is_an_error(tmp_path):
    _make_clip(tmp_path, "short", 8)
    with pytest.raises(ValueError, match="no clip long enough"):
        WindowDataset(tmp_path / "clips", tmp_path / "mels", ["short"], WindowConfig())


def test_fingerprint_changes_with_the_data(store):
    make = lambda: WindowDataset(store / "clips", store / "mels", ["a", "b"], WindowConfig(), seed=0)  # noqa: E731
    before = make().fingerprint()
    assert make().fingerprint() == before
    mel = np.load(store / "mels" / "a.npy")
    np.save(store / "mels" / "a.npy", mel + 1)  # a re-made mel: a checkpoint trained before must not be resumed
    assert make().fingerprint() != before


def test_speaker_balance_gives_each_speaker_its_share(tmp_path):
    from talkface.data.speaker_balance import SpeakerBalancedWindows

    for cid, n in [("big1", 300), ("big2", 300), ("small", 30)]:  # speaker "big": 2 clips, "small": 1 short clip
        _make_clip(tmp_path, cid, n)
    speakers = {"big1": "big", "big2": "big", "small": "small"}
    ids = ["big1", "big2", "small"]
    plain = WindowDataset(tmp_path / "clips", tmp_path / "mels", ids, WindowConfig(), seed=0)
    n = {s: sum(hi - lo + 1 for (lo, hi), c in zip(plain.valid, plain.clip_ids) if speakers[c] == s)
         for s in ("big", "small")}
    for power in (0.0, 0.5, 1.0):
        ds = SpeakerBalancedWindows(tmp_path / "clips", tmp_path / "mels", ids, WindowConfig(), speakers, power)
        want = n["small"] ** power / (n["small"] ** power + n["big"] ** power)
        assert ds.speaker_shares()["small"] == pytest.approx(want)
        drawn = [ds.locate(i) for i in range(3000)]
        small = np.mean([ds.clip_ids[c] == "small" for c, _, _ in drawn])
        assert abs(small - want) < 0.03, (power, small, want)
        for c, f, _ in drawn:  # every start is a valid start of its clip
            lo, hi = ds.valid[c]
            assert lo <= f <= hi
        item = ds[7]  # items are the plain dataset's items at the located window
        assert (item["frames"][:, 0, 0, 0] * 255).round().long().tolist() == list(range(item["start"], item["start"] + 5))
    assert ds.fingerprint() != plain.fingerprint()
    with pytest.raises(ValueError, match="no speaker"):
        SpeakerBalancedWindows(tmp_path / "clips", tmp_path / "mels", ids, WindowConfig(), {"big1": "big"}, 0.5)
