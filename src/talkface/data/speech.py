"""Offline speech for the synthetic dataset: espeak-ng (pip's espeakng-loader) through ctypes, with phoneme timings.

espeak-ng reports, for every phoneme it synthesizes, an event carrying the phoneme's mnemonic and its position in the
generated audio (ms). We keep those as real onset times, so the rendered mouth follows what is actually heard.

    voice = Voice("en-us+f3", rate=160, pitch=55, pitch_range=50)
    utt = synthesize("place blue at f two now", voice)    # Utterance(audio float32 [N] at utt.sample_rate, phonemes)
    clip = compose_clip(rng, voice, seconds=4.0, sample_rate=16000, pause_prob=0.3, ...)

Sentences follow the GRID grammar: command colour preposition letter digit adverb.
"""

from __future__ import annotations

import _ctypes
import ctypes
import dataclasses
import math
import threading
from fractions import Fraction
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

# GRID corpus grammar (Cooke et al. 2006): 6 word slots; the letter slot excludes "w" as in GRID.
GRID_WORDS: tuple[tuple[str, ...], ...] = (
    ("bin", "lay", "place", "set"),
    ("blue", "green", "red", "white"),
    ("at", "by", "in", "with"),
    tuple("abcdefghijklmnopqrstuvxyz"),
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    ("again", "now", "please", "soon"),
)

# Base English voices and espeak-ng variants; a speaker is one (voice+variant) with its own rate and pitch.
BASE_VOICES = ("en-us", "en", "en-gb-x-rp", "en-029", "en-gb-scotland")
VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5")

# espeak_EVENT_TYPE values (speak_lib.h)
_EVENT_LIST_TERMINATED = 0
_EVENT_PHONEME = 7
# espeak_AUDIO_OUTPUT / options / flags / parameters (speak_lib.h)
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_PHONEME_EVENTS = 0x0001
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_PARAM_RATE, _PARAM_VOLUME, _PARAM_PITCH, _PARAM_RANGE = 1, 2, 3, 4


class SpeechError(RuntimeError):
    pass


@dataclasses.dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng voice name ("en-us+f3"), speed in words/min, pitch and pitch range 0..100."""

    name: str
    rate: int = 175
    pitch: int = 50
    pitch_range: int = 50


@dataclasses.dataclass
class Phoneme:
    phoneme: str  # espeak-ng mnemonic without stress marks ("eI", "p", "u:")
    start: float  # seconds
    end: float


@dataclasses.dataclass
class Utterance:
    audio: np.ndarray  # float32 [N] in [-1, 1]
    sample_rate: int
    phonemes: list[Phoneme]
    text: str


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of this message
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))


class _Espeak:
    """The process-wide libespeak-ng (it keeps global state, so one instance and a lock)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError as exc:
            raise SpeechError("espeak-ng not available: the espeakng-loader package is not installed") from exc
        self.lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib = self.lib
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                     ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ng_SetRandSeed.argtypes = [ctypes.c_long]
        # path = the directory that contains espeak-ng-data
        data_parent = str(Path(espeakng_loader.get_data_path()).parent).encode()
        self.sample_rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_parent, _INITIALIZE_PHONEME_EVENTS)
        if self.sample_rate <= 0:
            raise SpeechError("espeak-ng not available: espeak_Initialize failed")
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._callback = _CALLBACK(self._on_synth)  # keep a reference: ctypes must not free it
        lib.espeak_SetSynthCallback(self._callback)

    def close(self) -> None:
        """Terminate and unload the library, so that the next load starts from fresh static state."""
        self.lib.espeak_Terminate()
        unload = getattr(_ctypes, "dlclose", None) or getattr(_ctypes, "FreeLibrary", None)
        if unload is not None:
            unload(self.lib._handle)

    def _on_synth(self, wav, n, events) -> int:
        if wav and n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EVENT_PHONEME:
                self._events.append((ev.id.string.decode("utf-8", "replace"), ev.audio_position))
            i += 1
        return 0

    def synth(self, text: str, voice: Voice) -> tuple[np.ndarray, list[tuple[str, int]]]:
        """int16 audio at self.sample_rate and [(mnemonic, onset ms)] for one message."""
        with _LOCK:
            if self.lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
                raise SpeechError(f"espeak-ng has no voice '{voice.name}'")
            for param, value in ((_PARAM_RATE, voice.rate), (_PARAM_PITCH, voice.pitch),
                                 (_PARAM_RANGE, voice.pitch_range), (_PARAM_VOLUME, 100)):
                self.lib.espeak_SetParameter(param, int(value), 0)
            self._chunks, self._events = [], []
            data = text.encode("utf-8")
            err = self.lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != 0:
                raise SpeechError(f"espeak_Synth failed with code {err} for {text!r}")
            audio = np.concatenate(self._chunks) if self._chunks else np.zeros(0, np.int16)
            return audio, list(self._events)


_ENGINE: _Espeak | None = None
_LOCK = threading.RLock()


def _engine() -> _Espeak:
    global _ENGINE
    with _LOCK:
        if _ENGINE is None:
            _ENGINE = _Espeak()
        return _ENGINE


def reset_engine(seed: int) -> None:
    """Reload libespeak-ng and seed its noise generator: what is synthesized next is reproducible.

    espeak-ng keeps state across messages that no API call resets (e.g. the phase of its pitch flutter, a static in
    wavegen.c) and seeds its noise from the clock, so the same text twice in one process gives different samples.
    A freshly loaded library with a fixed seed replays the same call sequence bit for bit.
    """
    global _ENGINE
    with _LOCK:
        if _ENGINE is not None:
            _ENGINE.close()
            _ENGINE = None
        eng = _engine()
        eng.lib.espeak_ng_SetRandSeed(int(seed) & 0x7FFFFFFF)
        # older builds also draw from libc's rand()
        ctypes.CDLL(None).srand(ctypes.c_uint(int(seed) & 0xFFFFFFFF))


def _strip_stress(name: str) -> str:
    return name.lstrip("',%=")


def resample(audio: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Polyphase resampling [N] -> [N * dst/src] (deterministic, float32)."""
    if src_rate == dst_rate:
        return audio.astype(np.float32)
    ratio = Fraction(dst_rate, src_rate)
    return resample_poly(audio.astype(np.float64), ratio.numerator, ratio.denominator).astype(np.float32)


def synthesize(text: str, voice: Voice, sample_rate: int | None = None) -> Utterance:
    """Speak `text`; phoneme intervals come from espeak-ng's phoneme events (pauses "_" are left out, as gaps)."""
    eng = _engine()
    raw, events = eng.synth(text, voice)
    audio = raw.astype(np.float32) / 32768.0
    duration = len(audio) / eng.sample_rate
    phonemes: list[Phoneme] = []
    for k, (name, ms) in enumerate(events):
        end = events[k + 1][1] / 1000.0 if k + 1 < len(events) else duration
        name = _strip_stress(name)
        if not name or name.startswith("_"):
            continue
        start = ms / 1000.0
        if end > start:
            phonemes.append(Phoneme(name, start, min(end, duration)))
    if sample_rate is not None and sample_rate != eng.sample_rate:
        audio = resample(audio, eng.sample_rate, sample_rate)
    return Utterance(audio, sample_rate or eng.sample_rate, phonemes, text)


def grid_sentence(rng: np.random.Generator) -> list[str]:
    """One GRID sentence as 6 words, e.g. ['place', 'blue', 'at', 'f', 'two', 'now']."""
    return [slot[int(rng.integers(len(slot)))] for slot in GRID_WORDS]


def speaker_voices(n: int, rng: np.random.Generator, rate_range: tuple[int, int] = (140, 200),
                   pitch_range: tuple[int, int] = (30, 70)) -> list[Voice]:
    """n distinct voices (voice+variant pairs without repeats while they last), with random speed and pitch."""
    combos = [f"{b}+{v}" for b in BASE_VOICES for v in VARIANTS]
    order = rng.permutation(len(combos))
    voices = []
    for i in range(n):
        voices.append(Voice(
            name=combos[int(order[i % len(combos)])],
            rate=int(rng.integers(rate_range[0], rate_range[1] + 1)),
            pitch=int(rng.integers(pitch_range[0], pitch_range[1] + 1)),
            pitch_range=int(rng.integers(30, 81)),
        ))
    return voices


@dataclasses.dataclass
class ClipSpeech:
    audio: np.ndarray  # float32 [round(seconds * sample_rate)]
    sample_rate: int
    phonemes: list[Phoneme]
    text: str  # words spoken, in order


def compose_clip(rng: np.random.Generator, voice: Voice, seconds: float, sample_rate: int, *,
                 lead_silence: tuple[float, float] = (0.2, 0.6), trail_silence: float = 0.2,
                 pause_prob: float = 0.3, pause_seconds: tuple[float, float] = (0.15, 0.5),
                 noise_level: float = 0.002, peak: float = 0.7) -> ClipSpeech:
    """A `seconds`-long track of GRID speech: leading silence, phrases separated by pauses, trailing silence.

    Sentences are split at a random word boundary with probability `pause_prob` (a pause inside the sentence); a
    sentence that does not fit in what is left is shortened word by word, so short clips still contain speech.
    The engine is reloaded and seeded from `rng` first, so the track depends only on the arguments (not thread-safe:
    one clip at a time per process).
    """
    n_total = int(round(seconds * sample_rate))
    if n_total <= 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    reset_engine(int(rng.integers(2**31)))
    track = np.zeros(n_total, np.float32)
    phonemes: list[Phoneme] = []
    words_spoken: list[str] = []
    t = float(rng.uniform(*lead_silence))
    end_limit = seconds - trail_silence
    while True:
        words = grid_sentence(rng)
        phrases = [words]
        if rng.random() < pause_prob:
            cut = int(rng.integers(1, len(words)))
            phrases = [words[:cut], words[cut:]]
        placed_any = False
        for phrase in phrases:
            # longest prefix of the phrase that still fits
            for k in range(len(phrase), 0, -1):
                utt = synthesize(" ".join(phrase[:k]), voice, sample_rate)
                if t + len(utt.audio) / sample_rate <= end_limit:
                    break
            else:
                utt = None
            if utt is None:
                break
            start = int(round(t * sample_rate))
            track[start:start + len(utt.audio)] += utt.audio[: n_total - start]
            offset = start / sample_rate
            phonemes += [Phoneme(p.phoneme, round(p.start + offset, 4), round(p.end + offset, 4))
                         for p in utt.phonemes]
            words_spoken += phrase[:k]
            placed_any = True
            t = offset + len(utt.audio) / sample_rate + float(rng.uniform(*pause_seconds))
            if k < len(phrase):
                break
        if not placed_any or t >= end_limit:
            break
    if not words_spoken:
        raise ValueError(f"{seconds} s is too short for even one word with voice {voice.name}")
    top = float(np.abs(track).max())
    if top > 0:
        track *= peak / top
    if noise_level > 0:
        track += (noise_level * rng.standard_normal(n_total)).astype(np.float32)
    return ClipSpeech(np.clip(track, -1.0, 1.0), sample_rate, phonemes, " ".join(words_spoken))


def frame_rms(audio: np.ndarray, sample_rate: int, fps: float, n_frames: int) -> np.ndarray:
    """Per-video-frame RMS of the audio: [n_frames]."""
    hop = sample_rate / fps
    out = np.zeros(n_frames, np.float64)
    for f in range(n_frames):
        seg = audio[int(round(f * hop)):int(round((f + 1) * hop))]
        out[f] = math.sqrt(float(np.mean(seg.astype(np.float64) ** 2))) if len(seg) else 0.0
    return out
