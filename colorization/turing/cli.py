"""The Turing test's command line: `python -m colorization.turing prepare|serve|results`.

    python -m colorization.turing prepare STUDY --images photos/ --method zhang=run/checkpoints/last.ckpt \\
        --method unet=colorized/unet/ [--count 100] [--trials 40] [--practice 10] [--sequential]
    python -m colorization.turing prepare STUDY --data samples --split test --method ...
    python -m colorization.turing serve STUDY [--host 0.0.0.0] [--port 8000]
    python -m colorization.turing results STUDY [--resamples 10000]

Exit status 0 on success, 1 on an expected error (one line on stderr), 2 on a usage error.
"""

from __future__ import annotations

import argparse
import secrets
import sys
from collections.abc import Sequence

from colorization.errors import ColorizationError

__all__ = ["build_parser", "main"]

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


def build_parser() -> argparse.ArgumentParser:
    """The parser of the three sub-commands."""
    p = argparse.ArgumentParser(prog="python -m colorization.turing", description="Colorization Turing test")
    sub = p.add_subparsers(dest="command", required=True)

    prep = sub.add_parser("prepare", help="build a study: real and fake 256 px pictures, the protocol")
    prep.add_argument("study", help="new (or empty) folder for the study")
    photos = prep.add_mutually_exclusive_group(required=True)
    photos.add_argument("--images", nargs="+", metavar="PATH", help="files or folders of real colour photos")
    photos.add_argument("--data", metavar="NAME", help="a data config (conf/data/NAME.yaml): its --split")
    prep.add_argument("--split", default="test", help="split of --data (default: test)")
    prep.add_argument(
        "--method",
        action="append",
        required=True,
        metavar="[NAME=]SOURCE",
        help="a checkpoint/.onnx, a folder of colorized images named like the originals, or pretrained:NAME "
        "(repeat for several; the gray input is always added)",
    )
    prep.add_argument("--count", type=int, default=None, help="photos to use (default: all)")
    prep.add_argument("--size", type=int, default=256, help="side of the square pictures in pixels")
    prep.add_argument("--display-ms", type=int, default=1000, help="how long a pair is shown (ms)")
    prep.add_argument("--sequential", action="store_true", help="show the two photos one after the other")
    prep.add_argument("--practice", type=int, default=10, help="practice trials, with feedback")
    prep.add_argument("--trials", type=int, default=40, help="scored trials per rater")
    prep.add_argument(
        "--vigilance", type=float, default=0.1, help="extra vigilance trials, share of --trials"
    )
    prep.add_argument(
        "--vigilance-pass", type=float, default=0.75, help="share of vigilance trials a rater must get right"
    )
    prep.add_argument("--seed", type=int, default=0, help="seed of the choice of photos")
    prep.add_argument("--device", default="cpu", help="device of the models (cpu, cuda, ...)")

    serve = sub.add_parser("serve", help="serve a study to raters")
    serve.add_argument("study")
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: this machine only)"
    )
    serve.add_argument("--port", type=int, default=8000)

    res = sub.add_parser(
        "results", help="fooling rates with bootstrap intervals; writes results.csv/json/html"
    )
    res.add_argument("study")
    res.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (raters × photos)")
    res.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    return p


def _prepare(args: argparse.Namespace) -> int:
    from colorization.turing.methods import parse_method
    from colorization.turing.prepare import collect_photos, prepare_study
    from colorization.turing.study import Protocol

    protocol = Protocol(
        display_ms=args.display_ms,
        layout="sequential" if args.sequential else "side_by_side",
        practice=args.practice,
        trials=args.trials,
        vigilance=args.vigilance,
        vigilance_pass=args.vigilance_pass,
        size=args.size,
    )
    if args.count is not None and args.count < 1:
        raise ColorizationError(f"--count={args.count} is out of range; allowed values: integer >= 1")
    methods = [parse_method(spec, device=args.device) for spec in args.method]
    if args.data:
        from colorization.app.splits import split_photos

        photos = split_photos(args.data, args.split)
    else:
        photos = collect_photos(args.images)
    study = prepare_study(args.study, photos, methods, protocol, count=args.count, seed=args.seed)
    print(
        f"study ready in {study.root}: {len(study.images)} photos × {len(study.methods)} methods "
        f"({', '.join(study.methods)}); serve it with: python -m colorization.turing serve {study.root}"
    )
    return 0


def _serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from colorization.turing.app import create_app
    except ImportError as err:
        raise ColorizationError(
            f"serving needs the turing extra ({err.name} is missing): pip install 'colorization-lab[turing]'"
        ) from None
    token = None if args.host in LOCAL_HOSTS else secrets.token_urlsafe(16)
    app = create_app(args.study, token=token)
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"raters: http://{host}:{args.port}/", flush=True)
    print(
        f"results: http://{host}:{args.port}/results" + (f"?token={token}" if token else ""),
        flush=True,
    )
    if token:
        print(f"token for results and exports: {token}", flush=True)
    print(f"answers are saved as they arrive in {app.state.study.database}; Ctrl-C stops", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _results(args: argparse.Namespace) -> int:
    from colorization.turing.report import print_results, write_results
    from colorization.turing.results import compute_results
    from colorization.turing.store import Store
    from colorization.turing.study import Study

    if args.resamples < 100:
        raise ColorizationError(
            f"--resamples={args.resamples} is out of range; allowed values: integer >= 100"
        )
    study = Study.load(args.study)
    if not study.database.is_file():
        raise ColorizationError(f"{study.root} has no answers yet: serve it first")
    results = compute_results(study, Store(study.database), resamples=args.resamples, seed=args.seed)
    print_results(results)
    paths = write_results(results, study.root, f"Colorization Turing test: {study.root.name}")
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run a sub-command; expected errors are one line on stderr and exit status 1."""
    args = build_parser().parse_args(argv)
    try:
        return {"prepare": _prepare, "serve": _serve, "results": _results}[args.command](args)
    except ColorizationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
