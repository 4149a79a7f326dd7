"""talkface.config: strict sections (a missing or unknown key is one line naming it), explicit defaults, passed keys."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from talkface.config import ConfigError, build, get, section

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass
class Inner:
    a: int = 1
    b: list[float] = dataclasses.field(default_factory=lambda: [0.5, 0.5])


@dataclasses.dataclass
class Outer:
    inner: Inner = dataclasses.field(default_factory=Inner)
    fps: float = 25.0
    name: str = "x"

    def __post_init__(self):
        if self.name == "bad":
            raise ValueError("name must not be bad")


def test_missing_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"^missing key 'sec\.inner\.b'$"):
        section({"sec": {"inner": {"a": 2}, "fps": 25, "name": "y"}}, "sec", Outer)
    with pytest.raises(ConfigError, match=r"^missing key 'sec\.fps'$"):
        section({"sec": {"inner": {"a": 2, "b": [1]}, "name": "y"}}, "sec", Outer)


def test_unknown_key_is_an_error_naming_it():
    with pytest.raises(ConfigError, match=r"sec\.inner: unknown key\(s\) \['c'\]"):
        section({"sec": {"inner": {"a": 2, "b": [1], "c": 3}, "fps": 25, "name": "y"}}, "sec", Outer)


def test_complete_section_builds_and_coerces():
    cfg = section({"sec": {"inner": {"a": 2, "b": [1, 2]}, "fps": 30, "name": "y"}}, "sec", Outer)
    assert cfg == Outer(Inner(2, [1, 2]), 30.0, "y") and isinstance(cfg.fps, float)
    with pytest.raises(ConfigError, match=r"sec\.inner\.a: expected int"):
        section({"sec": {"inner": {"a": "2", "b": []}, "fps": 30, "name": "y"}}, "sec", Outer)
    with pytest.raises(ConfigError, match="sec: name must not be bad"):
        section({"sec": {"inner": {"a": 2, "b": []}, "fps": 30, "name": "bad"}}, "sec", Outer)


def test_defaults_are_an_explicit_opt_in():
    assert build(Outer, {"inner": {"a": 3}}, "sec", defaults=True) == Outer(Inner(3, [0.5, 0.5]))
    assert section({"sec": {}}, "sec", Outer, defaults=True) == Outer()
    with pytest.raises(ConfigError, match="unknown key"):  # defaults never excuse an unknown key
        build(Outer, {"fsp": 3}, "sec", defaults=True)


def test_passed_keys_fill_the_section_and_must_not_be_written_twice():
    cfg = section({"sec": {"inner": {"b": []}, "name": "y"}}, "sec", Outer, passed={"fps": 50, "inner.a": 7})
    assert cfg.fps == 50.0 and cfg.inner.a == 7
    with pytest.raises(ConfigError, match=r"key 'sec\.fps' is passed down"):
        section({"sec": {"inner": {"a": 1, "b": []}, "fps": 25, "name": "y"}}, "sec", Outer, passed={"fps": 50})


def test_get_by_dotted_key():
    assert get({"crop": {"size": 96}}, "crop.size") == 96
    with pytest.raises(ConfigError, match=r"^missing key 'crop\.size'$"):
        get({"crop": {}}, "crop.size")


def test_dub_settings_from_a_params_file_are_strict_and_share_the_training_windows():
    import copy

    from talkface.cli import dub_config
    from talkface.config import load_params

    params = load_params(ROOT / "params.yaml")
    cfg = dub_config(params)
    assert cfg.window.fps == params["media"]["fps"] and cfg.window.k == params["windows"]["k"]
    assert cfg.mel.sample_rate == params["media"]["sample_rate"] and cfg.window.mel_fps == cfg.mel.frames_per_second
    broken = copy.deepcopy(params)
    del broken["dub"]["crf"]
    with pytest.raises(ConfigError, match=r"^missing key 'dub\.crf'$"):
        dub_config(broken)
    twice = copy.deepcopy(params)
    twice["dub"]["window"] = {"k": 5}
    with pytest.raises(ConfigError, match="passed down"):
        dub_config(twice)
