"""Dubbing speed: ours (G_S cached per reference + G_L in 5-frame windows) against the same work done the Wav2Lip way.

    PYTHONPATH=src python benchmarks/dub.py                      # every real sample, CPU (and CUDA when present)
    PYTHONPATH=src python benchmarks/dub.py --samples 2 --seconds 3 --repeats 2
    PYTHONPATH=src python benchmarks/dub.py --no-speed --peak-rss 3 --rss-size 1920x1080 3840x2160   # memory

Both pipelines decode (25 fps, same chunked decoder), detect faces (same detector), track boxes (same smoothing),
generate, paste and encode (same x264 settings) into an mp4 muxed with the speech; they differ only where the methods
differ:
- ours: `talkface.dub.Dubber` with the shipped real-face model (or --checkpoint): G_S once per reference segment
  (cached, when G_L uses it), G_L on 5-frame windows in batches of `--batch-size` windows, silent-speech detection,
  feathered colour-matched ellipse paste with detail restoration; channels-last + bf16 autocast on CUDA.
- Wav2Lip way: Wav2Lip's published 96x96 generator architecture (re-written here from its description: face encoder
  16-32-64-128-256-512-512 with residual convs, audio encoder 32-64-128-256-512, decoder of transposed convs with skip
  concatenations; random weights), and its inference loop: one crop per frame, the masked crop and the crop itself
  stacked on channels (6x96x96), a mel window starting at frame i, batches of 128 frames, no caching, float32, the
  prediction resized to the box and pasted as a hard rectangle.
Runs alternate (ours, Wav2Lip, ours, ...) so that load from other processes hits both alike; the ratio is of summed
times. Generator-only frames/s: the networks alone on random inputs at each pipeline's batch size, timed in alternation.
With --wav2lip-size, ours also runs at Wav2Lip-like widths (width 16, max 512; random weights).
`--peak-rss SECONDS` synthesises an input of each `--rss-size` by looping (and scaling) a real sample with ffmpeg and
reports the peak resident memory of dubbing it with the real model: the dubbing process's own peak (VmHWM) and the
peak of its RSS summed with its ffmpeg decoder and encoder (sampled every 50 ms).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from talkface.cli import default_checkpoint  # noqa: E402
from talkface.data.mel import mel_start, melspectrogram  # noqa: E402
from talkface.dub import DubConfig, Dubber  # noqa: E402
from talkface.dubbing.media_io import even_sides, mux, prefetch  # noqa: E402
from talkface.dubbing.tracking import track_all  # noqa: E402
from talkface.faces.crop import crop_frames  # noqa: E402
from talkface.media.decode import iter_frames, read_audio  # noqa: E402
from talkface.media.encode import write_video  # noqa: E402
from talkface.media.ffmpeg_bin import ffmpeg_exe  # noqa: E402
from talkface.media.probe import probe  # noqa: E402
from talkface.models.generator import Generator, GeneratorConfig  # noqa: E402
from talkface.models.layers import AudioEncoder  # noqa: E402

import cv2  # noqa: E402


# ------------------------------------------------------------------------------------------------ Wav2Lip 96x96


class ConvBNReLU(nn.Module):
    """Conv (or transposed conv) + BatchNorm + ReLU; `residual` adds the input before the ReLU."""

    def __init__(self, cin, cout, k, s=1, p=0, residual=False, transpose=False, output_padding=0):
        super().__init__()
        if transpose:
            self.conv = nn.ConvTranspose2d(cin, cout, k, s, p, output_padding)
        else:
            self.conv = nn.Conv2d(cin, cout, k, s, p)
        self.bn = nn.BatchNorm2d(cout)
        self.residual = residual

    def forward(self, x):
        y = self.bn(self.conv(x))
        return torch.relu(y + x if self.residual else y)


def _down(cin, cout, n_res, k=3, s=2, p=1):
    return [ConvBNReLU(cin, cout, k, s, p)] + [ConvBNReLU(cout, cout, 3, 1, 1, residual=True) for _ in range(n_res)]


def _up(cin, cout, n_res, k=3, s=2, p=1, op=1):
    return [ConvBNReLU(cin, cout, k, s, p, transpose=True, output_padding=op)] + \
        [ConvBNReLU(cout, cout, 3, 1, 1, residual=True) for _ in range(n_res)]


class Wav2Lip96(nn.Module):
    """Wav2Lip's 96x96 generator layout: audio [N,1,80,16], faces [N,6,96,96] (masked + reference) -> [N,3,96,96]."""

    def __init__(self):
        super().__init__()
        enc = [(6, 16, 0), (16, 32, 2), (32, 64, 3), (64, 128, 2), (128, 256, 2), (256, 512, 1)]
        self.face_encoder = nn.ModuleList(
            [nn.Sequential(ConvBNReLU(6, 16, 7, 1, 3))]
            + [nn.Sequential(*_down(cin, cout, n)) for cin, cout, n in enc[1:]]
            + [nn.Sequential(ConvBNReLU(512, 512, 3, 1, 0), ConvBNReLU(512, 512, 1))])  # 96,48,24,12,6,3,1
        self.audio_encoder = nn.Sequential(
            *_down(1, 32, 2, s=1), *_down(32, 64, 2, s=(3, 1)), *_down(64, 128, 2, s=3),
            *_down(128, 256, 1, s=(3, 2)), ConvBNReLU(256, 512, 3, 1, 0), ConvBNReLU(512, 512, 1))
        dec = [(1024, 512, 2), (768, 384, 2), (512, 256, 2), (320, 128, 2), (160, 64, 2)]
        self.face_decoder = nn.ModuleList(
            [nn.Sequential(ConvBNReLU(512, 512, 1)),
             nn.Sequential(*_up(1024, 512, 1, k=3, s=1, p=0, op=0))]
            + [nn.Sequential(*_up(cin, cout, n)) for cin, cout, n in dec])  # 1,3,6,12,24,48,96
        self.output = nn.Sequential(ConvBNReLU(80, 32, 3, 1, 1), nn.Conv2d(32, 3, 1), nn.Sigmoid())

    def forward(self, mel, faces):
        feats, x = [], faces
        for block in self.face_encoder:
            x = block(x)
            feats.append(x)
        x = self.audio_encoder(mel)
        for block in self.face_decoder:
            x = torch.cat([block(x), feats.pop()], dim=1)
        return self.output(x)


class Wav2LipWay:
    """Wav2Lip's inference loop over our decoder, detector, tracking and encoder."""

    def __init__(self, detector, cfg: DubConfig, device: torch.device, batch: int = 128):
        self.detector, self.cfg, self.device, self.batch = detector, cfg, device, batch
        self.model = Wav2Lip96().to(device).eval()

    def generate(self, crops: np.ndarray, mels: np.ndarray) -> np.ndarray:
        """uint8 [n,96,96,3] crops, [n,80,16] mels -> uint8 [n,96,96,3] predictions."""
        masked = crops.copy()
        masked[:, 48:] = 0
        faces = torch.from_numpy(np.concatenate([masked, crops], axis=3)).to(self.device)
        faces = faces.permute(0, 3, 1, 2).float() / 255.0
        mel = torch.from_numpy(mels[:, None]).to(self.device)
        with torch.inference_mode():
            pred = self.model(mel, faces)
        return (pred.permute(0, 2, 3, 1) * 255.0).byte().cpu().numpy()

    def dub(self, video: Path, audio: Path, out: Path) -> int:
        cfg = self.cfg
        info = probe(video)
        mel = melspectrogram(read_audio(audio, 16000))
        n_audio = int(np.ceil(len(mel) / 80 * cfg.window.fps - 1e-6))
        # Wav2Lip detects on every frame first (its frames are all in memory); here: detections, then a second decode
        raw = []
        for chunk in prefetch(iter_frames(video, cfg.window.fps, cfg.chunk_frames, info)):
            raw += [d.box if d is not None else [np.nan] * 4 for d in self.detector.detect(np.ascontiguousarray(chunk))]
        boxes, found = track_all(np.array(raw, np.float32), info.width, info.height, cfg.pads, cfg.smooth_window,
                                 cfg.smooth_method, cfg.max_gap)
        n_video = len(raw)

        def frames():
            t, pend = 0, []
            while t < n_audio:  # loop the video, as Wav2Lip does (frame i % len)
                for chunk in prefetch(iter_frames(video, cfg.window.fps, cfg.chunk_frames, info)):
                    for frame in chunk:
                        if t >= n_audio:
                            break
                        pend.append((t, frame))
                        t += 1
                        if len(pend) == self.batch:
                            yield from self._batch(pend, boxes, found, mel, n_video)
                            pend = []
                    if t >= n_audio:
                        break
            if pend:
                yield from self._batch(pend, boxes, found, mel, n_video)

        tmp = out.with_name(out.stem + ".video.mp4")
        write_video(tmp, frames(), cfg.window.fps, crf=cfg.crf, preset=cfg.preset, threads=0)
        mux(tmp, audio, out, cfg.audio_bitrate)
        tmp.unlink()
        return n_audio

    def _batch(self, pend, boxes, found, mel, n_video):
        idx = np.array([t % n_video for t, _ in pend])
        ok = found[idx]
        out = [np.array(f) for _, f in pend]
        if ok.any():
            sel = np.flatnonzero(ok)
            crops = crop_frames(np.stack([out[i] for i in sel]), boxes[idx[sel]], 96)
            last = len(mel) - 16
            mels = np.stack([mel[min(mel_start(pend[i][0], 25, 80), last):][:16].T for i in sel])
            for i, p in zip(sel, self.generate(crops, mels)):
                x0, y0, x1, y1 = boxes[idx[i]].astype(int)
                out[i][y0:y1, x0:x1] = cv2.resize(p, (x1 - x0, y1 - y0))
        yield even_sides(np.stack(out))


# ------------------------------------------------------------------------------------------------ timing


def ours_dubber(cfg: DubConfig, device: torch.device, gcfg: GeneratorConfig | None,
                checkpoint: Path | None = None) -> tuple[Dubber, str]:
    """The dubber of a checkpoint (default: the shipped real-face model), or random weights of `gcfg`."""
    ckpt = checkpoint or default_checkpoint()
    if gcfg is None and ckpt.is_file():
        return Dubber.from_checkpoints(ckpt, None, cfg, progress=False), ckpt.name
    gcfg = gcfg or GeneratorConfig()

    def make():
        return Generator(gcfg, AudioEncoder(32, gcfg.audio_dim)).eval().to(device)

    label = f"random, width {gcfg.width}, max_width {gcfg.max_width}"
    return Dubber(make(), make(), cfg, device, progress=False), label


def paired_fps(call_a, frames_a: int, call_b, frames_b: int, device: torch.device,
               min_seconds: float = 6.0) -> tuple[float, float]:
    """Frames/s of two callables timed in alternation (a, b, a, b, ...), so machine load hits both alike."""
    def timed(call) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        call()
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    timed(call_a), timed(call_b)  # warm-up
    ta = tb = 0.0
    na = nb = 0
    while ta + tb < min_seconds or na < 2:
        ta += timed(call_a)
        na += 1
        tb += timed(call_b)
        nb += 1
    return na * frames_a / ta, nb * frames_b / tb


def ours_generator_call(d: Dubber, device: torch.device):
    """One pipeline batch of ours: G_L on batch_size windows + G_S on the references that batch needs (at least
    one, though the pipeline needs one per reference_every frames; none when G_L takes raw references). Returns
    (callable, frames per call)."""
    b, k, s = d.cfg.batch_size, d.k, d.lips.size
    crops = np.random.default_rng(0).integers(0, 256, (b, k, s, s, 3), dtype=np.uint8)
    mel = np.random.default_rng(1).normal(size=(400, 80)).astype(np.float32)
    n_ref = max(1, int(round(b * k / d.cfg.reference_every)))

    def call():
        ident = d.lips.reference(crops[:n_ref])
        pose, mels = d.lips.window_inputs(crops, mel, [5 * i for i in range(b)])
        d.lips.generate(pose, ident[:1].expand(b, -1, -1, -1, -1), mels)

    return call, b * k


def wav2lip_generator_call(w: Wav2LipWay):
    crops = np.random.default_rng(0).integers(0, 256, (w.batch, 96, 96, 3), dtype=np.uint8)
    mels = np.random.default_rng(1).normal(size=(w.batch, 80, 16)).astype(np.float32)
    return (lambda: w.generate(crops, mels)), w.batch


def peak_rss(seconds: float, sample: Path, audio: Path, device: str, workdir: Path, size: tuple[int, int] | None,
             checkpoint: Path, detector: str) -> dict:
    """Dub a `seconds`-long loop of `sample` scaled to `size` (W, H; None = as it is), with the speech looped too, in a
    child process with `checkpoint`: its peak RSS, and that of its largest ffmpeg child (decoder or encoder)."""
    tag = f"{size[0]}x{size[1]}" if size else "native"
    long_video, long_audio = workdir / f"long_{tag}.mp4", workdir / "long.wav"
    ff = [ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y"]
    scale = ["-vf", f"scale={size[0]}:{size[1]}"] if size else []
    subprocess.run(ff + ["-stream_loop", "-1", "-i", str(sample), "-t", str(seconds), *scale, "-c:v", "libx264",
                         "-preset", "ultrafast", "-crf", "23", "-c:a", "aac", str(long_video)], check=True)
    subprocess.run(ff + ["-stream_loop", "-1", "-i", str(audio), "-t", str(seconds), str(long_audio)], check=True)
    # Peak memory: VmHWM of the dubbing process (its own peak; ru_maxrss would carry the parent's RSS across fork and
    # exec), and the peak of the summed RSS of the process and its ffmpeg children, sampled every 50 ms. Only children
    # that are ffmpeg count: between fork and exec a child is a copy of this process whose RSS reports the pages it
    # shares with it, which once added a phantom 0.9 GB at 4K.
    code = (
        "import sys, json, threading, time; sys.path.insert(0, %r)\n"
        "import psutil\n"
        "from talkface.dub import DubConfig, Dubber\n"
        "me, peak, done = psutil.Process(), [0], threading.Event()\n"
        "def watch():\n"
        "    while not done.is_set():\n"
        "        total = 0\n"
        "        for p in [me] + me.children(recursive=True):\n"
        "            try: total += p.memory_info().rss if p is me or 'ffmpeg' in p.name() else 0\n"
        "            except psutil.Error: pass\n"
        "        peak[0] = max(peak[0], total); time.sleep(0.05)\n"
        "threading.Thread(target=watch, daemon=True).start()\n"
        "d = Dubber.from_checkpoints(%r, cfg=DubConfig(detector=%r, device=%r), progress=False)\n"
        "r = d.dub(%r, %r, %r)\n"
        "done.set()\n"
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]\n"
        "print(json.dumps({'frames': r.frames, 'dubbed': r.dubbed, 'seconds': r.seconds,"
        " 'peak_rss_mb': int(hwm) / 1024, 'tree_peak_rss_mb': peak[0] / 2**20}))\n"
    ) % (str(ROOT / "src"), str(checkpoint), detector, device, str(long_video), str(long_audio),
         str(workdir / f"long_dub_{tag}.mp4"))
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(res.stderr.strip().splitlines()[-1])
    out = json.loads(res.stdout.strip().splitlines()[-1])
    info = probe(long_video)
    out.update(input_seconds=seconds, input_size=[info.width, info.height], checkpoint=checkpoint.name)
    return out


def before_after_grid(video: Path, audio: Path, out_png: Path, checkpoint: Path | None = None, seconds: float = 2.0,
                      n: int = 4, tile: int = 200) -> str:
    """Dub the first `seconds` of a real sample and save a 2 x n grid (before / after) of the face region.
    Uses models/generator.pt (+ silent.pt) when present, else random weights (then the grid shows where and how the
    mouth is pasted, not lip-sync quality). Returns a one-line caption."""
    from PIL import Image

    cfg = DubConfig(detector="dlib")
    dubber, label = ours_dubber(cfg, torch.device("cpu"), None, checkpoint)
    info = probe(video)
    wav = read_audio(audio, 16000)[: int(seconds * 16000)]
    n_audio = int(np.ceil(len(wav) / 16000 * cfg.window.fps - 1e-6))
    stats: dict = {}
    blocks = [b for b in dubber.iter_dubbed(video, info, melspectrogram(wav), n_audio, stats)]
    out, src, boxes, dubbed = (np.concatenate([b[i] for b in blocks])[:n_audio] for i in range(4))
    picks = np.flatnonzero(dubbed)[np.linspace(0, dubbed.sum() - 1, n).astype(int)]
    rows = []
    for frames in (src, out):
        tiles = []
        for t in picks:
            x0, y0, x1, y1 = boxes[t]
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            side = int(min((x1 - x0) * 1.5, info.width, info.height))  # first: a face near the frame's size fits
            a0 = int(np.clip(cx - side / 2, 0, info.width - side))
            b0 = int(np.clip(cy - side / 2, 0, info.height - side))
            tiles.append(cv2.resize(frames[t][b0:b0 + side, a0:a0 + side], (tile, tile), interpolation=cv2.INTER_AREA))
        rows.append(np.concatenate(tiles, axis=1))
    img = np.concatenate(rows, axis=0)
    for r, text in enumerate(("before", "after")):
        cv2.putText(img, text, (6, r * tile + 22), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).quantize(256, method=Image.Quantize.MEDIANCUT).save(out_png, optimize=True)
    return (f"{video.name} + {audio.name}, frames {picks.tolist()} at 25 fps; generator: {label}; "
            f"{out_png.stat().st_size // 1024} KB")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples-dir", type=Path,
                    default=Path(os.environ.get("TALKFACE_REAL_SAMPLES", ROOT.parent / "shared" / "real-samples")))
    ap.add_argument("--samples", type=int, default=0, help="use only the first N videos (0 = all)")
    ap.add_argument("--seconds", type=float, default=0, help="cut each video to this many seconds (0 = whole)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16, help="ours: G_L windows per batch")
    ap.add_argument("--wav2lip-size", action="store_true", help="also run ours at Wav2Lip-like widths (16, max 512)")
    ap.add_argument("--peak-rss", type=float, default=0, metavar="SECONDS",
                    help="also measure peak RSS of dubbing a SECONDS-long input at each --rss-size")
    ap.add_argument("--rss-size", nargs="+", default=["native", "1920x1080", "3840x2160"],
                    help="input sizes of the --peak-rss runs (WxH or native)")
    ap.add_argument("--checkpoint", type=Path, default=None,
                    help="G_L of ours (default: the shipped real-face model)")
    ap.add_argument("--detector", default="dlib", help="face detector of both pipelines (dlib: the offline default)")
    ap.add_argument("--no-speed", action="store_true", help="skip the speed comparison (only --grid / --peak-rss)")
    ap.add_argument("--generator-only", action="store_true", help="only the generator-only comparison")
    ap.add_argument("--grid", type=Path, help="also save a before/after frame grid PNG of a real sample here")
    ap.add_argument("--grid-video", type=Path, default=None, help="video of --grid (default: vrt_face_2.mp4)")
    ap.add_argument("--grid-audio", type=Path, default=None, help="speech of --grid (default: vrt_audio_1.wav)")
    ap.add_argument("--devices", default="auto", help="comma list: cpu,cuda (auto = cpu, plus cuda when present)")
    ap.add_argument("--json", type=Path, help="write the figures here too")
    args = ap.parse_args()

    videos = sorted(args.samples_dir.glob("*.mp4"))
    audios = sorted(args.samples_dir.glob("*.wav"))
    if not videos or not audios:
        sys.exit(f"no real samples in {args.samples_dir}")
    if args.samples:
        videos = videos[: args.samples]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.devices == "auto" \
        else args.devices.split(",")
    report: dict = {"torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if args.seconds:
            cut = []
            for v in videos:
                c = tmp / f"cut_{v.name}"
                subprocess.run([ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y", "-i", str(v), "-t",
                                str(args.seconds), "-c", "copy", str(c)], check=True)
                cut.append(c)
            videos = cut
        for dev_name in [] if args.no_speed else devices:
            device = torch.device(dev_name)
            cfg = DubConfig(detector=args.detector, device=dev_name, batch_size=args.batch_size)
            variants = [None] + ([GeneratorConfig(width=16, max_width=512)] if args.wav2lip_size else [])
            w2l = Wav2LipWay(None, cfg, device)
            for gcfg in variants:
                ours, label = ours_dubber(cfg, device, gcfg, args.checkpoint)
                w2l.detector = ours.detector
                t_ours = t_w2l = 0.0
                n_ours = n_w2l = 0
                for rep in range(0 if args.generator_only else args.repeats):
                    for i, v in enumerate(videos):
                        a = audios[i % len(audios)]
                        t0 = time.perf_counter()
                        r = ours.dub(v, a, tmp / "ours.mp4")
                        t_ours += time.perf_counter() - t0
                        n_ours += r.frames
                        t0 = time.perf_counter()
                        n_w2l += w2l.dub(v, a, tmp / "w2l.mp4")
                        t_w2l += time.perf_counter() - t0
                g_ours, g_w2l = paired_fps(*ours_generator_call(ours, device), *wav2lip_generator_call(w2l), device)
                row = {"device": dev_name, "ours_model": label, "videos": len(videos), "repeats": args.repeats,
                       "ours_e2e_fps": n_ours / t_ours if n_ours else float("nan"),
                       "wav2lip_e2e_fps": n_w2l / t_w2l if n_w2l else float("nan"),
                       "e2e_ratio": (n_ours / t_ours) / (n_w2l / t_w2l) if n_ours else float("nan"),
                       "ours_generator_fps": g_ours, "wav2lip_generator_fps": g_w2l,
                       "generator_ratio": g_ours / g_w2l,
                       "ours_params_M": sum(p.numel() for p in ours.lips.g_l.parameters()) / 1e6,
                       "wav2lip_params_M": sum(p.numel() for p in w2l.model.parameters()) / 1e6}
                report["runs"].append(row)
                with_gs = " x2 with G_S" if ours.lips.g_s is not None else ", no G_S"
                print(f"[{dev_name}] ours ({label}, G_L {row['ours_params_M']:.1f}M params{with_gs}): "
                      f"end-to-end {row['ours_e2e_fps']:.1f} frames/s, generator {g_ours:.1f} frames/s | "
                      f"Wav2Lip way ({row['wav2lip_params_M']:.1f}M): "
                      f"end-to-end {row['wav2lip_e2e_fps']:.1f} frames/s, "
                      f"generator {g_w2l:.1f} frames/s | ratio ours/Wav2Lip: end-to-end {row['e2e_ratio']:.2f}, "
                      f"generator {row['generator_ratio']:.2f}", flush=True)
        if args.grid:
            video = args.grid_video or args.samples_dir / "vrt_face_2.mp4"
            audio = args.grid_audio or args.samples_dir / "vrt_audio_1.wav"
            print(f"[grid] {args.grid}: " + before_after_grid(video, audio, args.grid, args.checkpoint))
        if args.peak_rss:
            report["peak_rss"] = []
            for size in args.rss_size:
                wh = None if size == "native" else tuple(int(v) for v in size.lower().split("x"))
                rss = peak_rss(args.peak_rss, videos[0], audios[0], devices[0], tmp, wh,
                               args.checkpoint or default_checkpoint(), args.detector)
                report["peak_rss"].append(rss)
                print(f"[peak RSS] {rss['input_seconds']} s input {rss['input_size'][0]}x{rss['input_size'][1]} "
                      f"({rss['frames']} frames, {rss['dubbed']} dubbed, {rss['checkpoint']}): dubbing process "
                      f"{rss['peak_rss_mb']:.0f} MB, with its ffmpeg children {rss['tree_peak_rss_mb']:.0f} MB, "
                      f"{rss['frames'] / rss['seconds']:.1f} frames/s end to end", flush=True)
    report["self_peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
