"""The `talkface` command. One function per subcommand (`cmd_<name>`), registered in `build_parser`.

    talkface prepare --source folder --input videos/ --out prepared/ --detector haar
        -> prepared/raw/index.csv, prepared/clips/<id>/..., prepared/clips/manifest.csv, prepared/splits/*.txt
    talkface weights list | download NAME... | verify      [--dir DIR, default: the torch hub checkpoint folder]

Errors a user can fix (bad paths, a detector whose weights are missing) end with one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .config import ConfigError


class CLIError(RuntimeError):
    pass


def cmd_prepare(args: argparse.Namespace) -> int:
    """fetch (folder / lrs2 / hdtf / synthetic) + crop into --out, with params.yaml values overridable by flags."""
    from .config import load_params, section
    from .data.prepare import CropConfig, prepare, summary
    from .data.sources import FetchConfig, fetch

    # with --params its fetch and crop sections are read strictly, as the stages read them (the rates from `media`);
    # without, the defaults
    if args.params:
        from .pipeline_params import fps, sample_rate

        params = load_params(args.params)
        rates = {"fps": fps(params), "sample_rate": sample_rate(params)}
        fetch_cfg = section(params, "fetch", FetchConfig, passed={f"synthetic.{k}": v for k, v in rates.items()})
        crop_cfg = section(params, "crop", CropConfig, passed=rates)
    else:
        fetch_cfg = section({"fetch": {}}, "fetch", FetchConfig, defaults=True)
        crop_cfg = section({"crop": {}}, "crop", CropConfig, defaults=True)
    fetch_cfg.source = args.source
    if args.source == "folder":
        if not args.input:
            raise CLIError("--input DIR is required with --source folder")
        fetch_cfg.folder.input = str(args.input)
    elif args.source == "lrs2":
        if not args.input:
            raise CLIError("--input LRS2_ROOT is required with --source lrs2")
        fetch_cfg.lrs2.root = str(args.input)
    elif args.source == "grid":
        if not args.input:
            raise CLIError("--input GRID_ROOT is required with --source grid (the folder holding s1/, s2/, ...)")
        fetch_cfg.grid.root = str(args.input)
        if args.speakers:
            fetch_cfg.grid.speakers = list(args.speakers)
        if args.download:
            fetch_cfg.grid.download = True
    elif args.source == "hdtf":
        if not args.input:
            raise CLIError("--input HDTF_LISTS_DIR is required with --source hdtf")
        fetch_cfg.hdtf.lists_dir = str(args.input)
    if args.max_clips is not None:
        fetch_cfg.max_clips = args.max_clips
    for name in ("detector", "size", "workers", "min_frames", "max_missing_ratio", "smooth_window"):
        value = getattr(args, name)
        if value is not None:
            setattr(crop_cfg, name, value)
    if args.pads is not None:
        crop_cfg.pads = list(args.pads)
    fetch_cfg.workers = crop_cfg.workers

    out = Path(args.out)
    raw, clips, splits = out / "raw", out / "clips", out / "splits"
    index = fetch(fetch_cfg, raw)
    print(f"[prepare] {len(index)} clips indexed -> {raw / 'index.csv'}")
    manifest = prepare(raw, clips, splits, crop_cfg, source=fetch_cfg.source, progress=not args.quiet)
    s = summary(manifest)
    print(f"[prepare] kept {s['kept']} of {s['clips']} clips ({s['kept_frames']} frames) -> {clips}; "
          f"rejected: {s['rejected_by_reason'] or 'none'}")
    return 0


def cmd_dub(args: argparse.Namespace) -> int:
    """Put the speech of --audio on --video (or every row of --pairs) with the trained G_S/G_L; see docs/dubbing.md."""
    from .config import load_params
    from .dub import DubConfig, DubError, Dubber
    from .media.encode import EncodeError

    # with --params: its dub section, the windows and the mel parameters of training, read strictly as the stages
    # read them; without: the defaults
    cfg = dub_config(load_params(args.params)) if args.params else DubConfig()
    for name in ("detector", "batch_size", "device", "long_audio", "chunk_frames", "reference_every"):
        value = getattr(args, name)
        if value is not None:
            setattr(cfg, name, value)
    if args.pads is not None:
        cfg.pads = list(args.pads)
    if args.adapt is not None:
        cfg.adapt.steps = cfg.adapt.default_steps if args.adapt == -1 else args.adapt
        if cfg.adapt.steps < 0:
            raise CLIError(f"--adapt takes a number of steps >= 0, got {args.adapt}")
    if args.no_silence:
        cfg.silence.enabled = False
    if args.no_norm_stats:
        cfg.norm_stats.enabled = False
    if args.face_index is not None:
        cfg.detect.face_index = args.face_index
    if args.pairs is None and not (args.video and args.audio and args.out):
        raise CLIError("give --video, --audio and --out, or --pairs CSV")
    if args.pairs is not None and (args.video or args.audio or args.out):
        raise CLIError("--pairs cannot be combined with --video/--audio/--out")
    import signal

    # a terminated run (SIGTERM) unwinds like Ctrl-C, so its temporary files are removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        checkpoint = args.checkpoint or default_checkpoint()
        dubber = Dubber.from_checkpoints(checkpoint, args.silent_checkpoint, cfg, progress=not args.quiet)
        if args.pairs is not None:
            done = dubber.dub_pairs(args.pairs, log=lambda line: print(line, file=sys.stderr))
            failed = sum(isinstance(r, Exception) for _, r in done)
            print(f"[dub] {len(done) - failed} of {len(done)} pairs dubbed")
            return 1 if failed else 0
        res = dubber.dub(args.video, args.audio, args.out)
    except (DubError, EncodeError) as exc:
        raise CLIError(str(exc)) from None
    adapted = f", adapted in {res.adapt_seconds:.0f} s" if res.adapt_seconds else ""
    print(f"[dub] {res.out}: {res.frames} frames, {res.dubbed} dubbed ({res.silent_frames} silent, closed lips), "
          f"{res.references} identity reference(s){' through G_S' if dubber.lips.g_s is not None else ''}, "
          f"{res.fps:.1f} frames/s end to end{adapted} "
          f"({dubber.detector_name} faces, {dubber.device})")
    return 0


SHIPPED_GENERATOR = "real_face_generator.pt"  # trained on GRID s1 by experiments/grid (docs/model_card.md)


def default_checkpoint() -> Path:
    """The real-face G_L that ships with the package (talkface/assets/, docs/model_card.md). `dvc repro`'s own model is
    one flag away: --checkpoint models/generator.pt."""
    return Path(__file__).resolve().parent / "assets" / SHIPPED_GENERATOR


def dub_config(params: dict):
    """DubConfig from a params dict: `dub`, with the training windows (`windows`) and mel parameters (`mels.mel`)
    passed down (fps and the window shape are those of training)."""
    from .config import section
    from .dub import DubConfig
    from .model_inputs import contract_params

    return section(params, "dub", DubConfig, passed=contract_params(params))


def cmd_weights(args: argparse.Namespace) -> int:
    """list / download / verify the pretrained files of `talkface.weights_registry` in --dir (default: hub cache)."""
    from .download import DownloadError
    from .weights import hub_dir
    from .weights_registry import REGISTRY, check, fetch, read_record, select

    directory = Path(args.dir) if args.dir else hub_dir()
    if args.action == "list":
        record = read_record(directory)
        print(f"[weights] folder: {directory}")
        for e in REGISTRY:
            present = (directory / e.filename).is_file()
            print(f"{e.name}  {e.filename}  {'present' if present else 'missing'}")
            print(f"    for:    {e.used_for}")
            print(f"    url:    {e.url}" + (f"  [unverified: {e.url_note}]" if e.url_note else ""))
            recorded = record.get(e.filename, {})
            if e.sha256 or e.size:
                known = "  ".join(x for x in (f"{e.size} bytes" if e.size else "",
                                              f"SHA-256 {e.sha256}" if e.sha256 else "") if x)
                print(f"    known:  {known}" + (f" ({e.checksum_note})" if e.checksum_note else ""))
            elif e.sha256_prefix:
                print(f"    known:  SHA-256 starts with {e.sha256_prefix}")
            if recorded:
                print(f"    recorded: {recorded.get('size')} bytes  SHA-256 {recorded.get('sha256')}  "
                      f"({recorded.get('downloaded', '')})")
        return 0
    if args.action == "download":
        entries = select(args.names)
        for i, e in enumerate(entries, 1):
            try:
                path, done = fetch(e, directory, force=args.force, progress=not args.quiet, timeout=args.timeout)
            except DownloadError as exc:
                kept = f" ({i - 1} of {len(entries)} done before it)" if len(entries) > 1 else ""
                raise CLIError(f"{e.name}: {exc}{kept}") from None
            print(f"[weights] {e.name}: {path} {done}")
        return 0
    bad = 0
    record = read_record(directory)
    print(f"[weights] folder: {directory}")
    for e in REGISTRY:
        result = check(e, directory, record)
        bad += result.state == "mismatch"
        print(f"{e.name}  {result.state.upper() if result.state == 'mismatch' else result.state}  {result.detail}")
    if bad:
        print(f"talkface weights: error: {bad} file(s) do not match; run `talkface weights download NAME` "
              "to replace them", file=sys.stderr)
    return 1 if bad else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="talkface", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("prepare", help="fetch videos and write 25 fps face crops, audio, manifest and splits")
    p.add_argument("--source", default="folder", choices=["folder", "lrs2", "grid", "hdtf", "synthetic"])
    p.add_argument("--input", type=Path, help="folder of videos / LRS2 root / GRID root / HDTF lists folder")
    p.add_argument("--speakers", nargs="+", help="GRID speakers (default: fetch.grid.speakers, s1)")
    p.add_argument("--download", action="store_true",
                   help="GRID: download speakers missing under --input from the corpus's official URLs")
    p.add_argument("--out", type=Path, required=True, help="output folder (raw/, clips/, splits/ inside)")
    p.add_argument("--params", type=Path, help="params.yaml whose fetch/crop sections are the defaults")
    p.add_argument("--detector", choices=["auto", "fan", "dlib", "haar", "annotations"],
                   help="auto = fan when its weights are cached, else dlib, else haar")
    p.add_argument("--size", type=int, help="crop side in pixels (default 96)")
    p.add_argument("--pads", type=float, nargs=4, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="box margins as fractions of the face box")
    p.add_argument("--smooth-window", dest="smooth_window", type=int)
    p.add_argument("--min-frames", dest="min_frames", type=int)
    p.add_argument("--max-missing-ratio", dest="max_missing_ratio", type=float)
    p.add_argument("--max-clips", dest="max_clips", type=int)
    p.add_argument("--workers", type=int)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("dub", help="put new speech on a real video (lip sync with G_S/G_L)",
                       description="Dub a video with new speech. Output: H.264 + AAC at 25 fps, as long as the "
                                   "audio (the video is looped or held when shorter; when longer, the rest keeps "
                                   "its original mouth). See docs/dubbing.md.")
    p.add_argument("--video", type=Path, help="input video (any container/codec/fps/size ffmpeg reads)")
    p.add_argument("--audio", type=Path, help="speech: any file with an audio stream (wav, mp3, a video, ...)")
    p.add_argument("--out", type=Path, help="output video (.mp4, .mov, .m4v or .mkv)")
    p.add_argument("--pairs", type=Path,
                   help="CSV of video,audio,out rows (paths relative to the CSV) to dub in one run")
    p.add_argument("--checkpoint", type=Path,
                   help="G_L checkpoint (default: the shipped real-face model, docs/model_card.md; "
                        "`dvc repro` writes models/generator.pt)")
    p.add_argument("--silent-checkpoint", dest="silent_checkpoint", type=Path,
                   help="G_S checkpoint (default: silent.pt beside --checkpoint)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--detector", choices=["auto", "fan", "dlib", "haar"],
                   help="face detector: auto = fan when its weights are cached, else dlib (offline), else haar")
    p.add_argument("--pads", type=float, nargs=4, metavar=("TOP", "BOTTOM", "LEFT", "RIGHT"),
                   help="face box margins as fractions of the box (default 0 0.1 0 0, as training)")
    p.add_argument("--batch-size", dest="batch_size", type=int, help="G_L windows of 5 frames per forward pass")
    p.add_argument("--face-index", dest="face_index", type=int,
                   help="which face when there are several: 0 = largest (default), 1 = second largest, ...")
    p.add_argument("--long-audio", dest="long_audio", choices=["loop", "hold"],
                   help="audio longer than the video: loop the video from its start, or hold its last frame")
    p.add_argument("--chunk-frames", dest="chunk_frames", type=int, help="frames decoded at a time")
    p.add_argument("--reference-every", dest="reference_every", type=int,
                   help="frames per identity-reference segment (G_S runs once per segment)")
    p.add_argument("--adapt", nargs="?", type=int, const=-1, metavar="N",
                   help="fine-tune G_L on the video itself for N steps first (alone: dub.adapt.default_steps); "
                        "cached per video, so a second dub of it starts at once")
    p.add_argument("--no-silence", dest="no_silence", action="store_true",
                   help="do not close the lips where the new speech is silent")
    p.add_argument("--no-norm-stats", dest="no_norm_stats", action="store_true",
                   help="keep G_L's trained BatchNorm statistics (default: re-estimated on the video first)")
    p.add_argument("--params", type=Path, help="params.yaml whose dub section gives the defaults")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_dub)

    p = sub.add_parser("weights", help="list, download or verify the pretrained files talkface can use",
                       description="Pretrained files (face-alignment, VGG-19, FID InceptionV3, syncnet_v2, "
                                   "AV-HuBERT): nothing downloads them at run time; this command does, resumably, "
                                   "into the torch hub cache where the loaders look.")
    actions = p.add_subparsers(dest="action", required=True)
    for action, help_text in (("list", "every file with its URL, known size/SHA-256, and whether it is present"),
                              ("download", "download NAME... (or all), check and record their checksums"),
                              ("verify", "check the present files against known or recorded checksums")):
        a = actions.add_parser(action, help=help_text)
        a.add_argument("--dir", type=Path, help="folder of the files (default: the torch hub checkpoint folder)")
        if action == "download":
            a.add_argument("names", nargs="+", metavar="NAME", help="names from `talkface weights list`, or all")
            a.add_argument("--force", action="store_true", help="download even when a good copy is present")
            a.add_argument("--timeout", type=float, default=30.0, help="seconds per network operation")
            a.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_weights)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .data.store import SourceError  # not data.sources: that pulls in the synthetic generator's scipy
    from .faces.detect import FaceDetectorUnavailable
    from .media.probe import MediaError

    try:
        return args.func(args)
    except (CLIError, ConfigError, SourceError, FaceDetectorUnavailable, MediaError, ValueError,
            FileNotFoundError) as exc:
        print(f"talkface {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
