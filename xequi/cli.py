"""The ``xequi`` command line: thin wrappers over the library's public functions."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from xequi.errors import ParameterError, XequiError

__all__ = ["main", "build_parser"]


def _write(ds, out: str, overwrite: bool) -> Path:
    """Write ``ds`` to zarr or netCDF, chosen by the extension of ``out``."""
    from xequi.io import write_dataset

    return write_dataset(ds, out, overwrite=overwrite)


def _cmd_simulate(args) -> int:
    from xequi.datasets import rayleigh_benard

    if args.system != "rbc":  # argparse restricts choices; kept for clarity
        raise ParameterError(f"unknown system {args.system!r}", fix="use 'rbc'")
    kwargs = {k: getattr(args, k) for k in ("Ra", "Pr", "aspect", "nx", "ny", "frames", "frame_interval",
                                            "spinup") if getattr(args, k) is not None}
    ds = rayleigh_benard(preset=args.preset, seed=args.seed, progress=not args.quiet, **kwargs)
    path = _write(ds, args.out, args.overwrite)
    print(f"wrote {path}")
    return 0


def _cmd_demo(args) -> int:
    from xequi.demo import run_demo

    run_demo(out_dir=args.out_dir, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``xequi`` command.

    Returns
    -------
    argparse.ArgumentParser
    """
    from xequi._version import __version__

    parser = argparse.ArgumentParser(prog="xequi", description=__doc__)
    parser.add_argument("--version", action="version", version=f"xequi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="simulate a dataset and write it to zarr or netCDF")
    sim.add_argument("system", choices=["rbc"], help="rbc: 2-D Rayleigh–Bénard convection")
    sim.add_argument("--preset", default="default", help="simulator preset (default: %(default)s)")
    sim.add_argument("--seed", type=int, default=0)
    sim.add_argument("--Ra", type=float, help="Rayleigh number (overrides the preset)")
    sim.add_argument("--Pr", type=float, help="Prandtl number (overrides the preset)")
    sim.add_argument("--aspect", type=float, help="width / height (overrides the preset)")
    sim.add_argument("--nx", type=int, help="output grid columns (overrides the preset)")
    sim.add_argument("--ny", type=int, help="output grid rows (overrides the preset)")
    sim.add_argument("--frames", type=int, help="number of output frames (overrides the preset)")
    sim.add_argument("--frame-interval", dest="frame_interval", type=float,
                     help="time between frames (overrides the preset)")
    sim.add_argument("--spinup", type=float, help="spin-up time before the first frame")
    sim.add_argument("--out", required=True, help="output path, .zarr or .nc")
    sim.add_argument("--overwrite", action="store_true", help="replace an existing output")
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(func=_cmd_simulate)

    demo = sub.add_parser("demo", help="run the main job on the built-in default data")
    demo.add_argument("--out-dir", default="demo-output", help="where outputs go (default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``xequi`` command.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        Exit status: 0 on success, 2 on a user error (printed as one line on stderr).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except XequiError as err:
        first = str(err).splitlines()
        msg = " ".join(line.strip() for line in first)
        print(f"xequi: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("xequi: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
