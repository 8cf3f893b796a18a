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


def _open_input(args, what: str = "data"):
    """The input dataset of a subcommand: ``--data PATH`` or ``--catalog/--entry`` (+ ``--param``)."""
    import xarray as xr

    from xequi.catalog import catalog, catalog_path

    path = getattr(args, "data", None)
    if path:
        from pathlib import Path as _P

        p = _P(path)
        if not p.exists():
            raise ParameterError(f"{what} path {path!r} does not exist.",
                                 fix="give an existing .zarr store or .nc file")
        if p.suffix.lower() == ".zarr" or p.is_dir():
            return xr.open_zarr(p)
        return xr.open_dataset(p)
    import intake

    cat = intake.open_catalog(args.catalog) if args.catalog else catalog()
    if args.entry not in list(cat):
        raise ParameterError(
            f"catalog {args.catalog or str(catalog_path())!r} has no entry {args.entry!r}.",
            fix=f"choose one of {sorted(cat)}")
    params = {}
    for item in args.param or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ParameterError(f"--param {item!r} is not KEY=VALUE.", fix="write e.g. --param preset=default")
        params[key] = value
    return cat[args.entry](**params).to_dask()


def _cmd_train(args) -> int:
    from xequi.checkpoint import save_model
    from xequi.train import fit

    ds = _open_input(args)
    if args.variables:
        ds = ds[args.variables.split(",")]
    scalars = [s for s in (args.scalars or "").split(",") if s]
    fields_kwargs = {}
    if scalars:
        fields_kwargs["scalars"] = scalars
    if args.no_velocity:
        if not scalars:
            raise ParameterError("--no-velocity trains a scalar-only model: name its channels.",
                                 fix="add --scalars VAR[,VAR...]")
        fields_kwargs["velocity"] = False
    model, history = fit(args.model, ds, t_in=args.t_in, size=args.size, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, window=args.window,
                         augment=tuple(args.augment.split(",")) if args.augment else (),
                         seed=args.seed, device=args.device, progress=not args.quiet,
                         checkpoint_dir=args.checkpoint_dir, fields_kwargs=fields_kwargs or None,
                         schedule=args.schedule, warmup=args.warmup, optimizer=args.optimizer,
                         clip_grad=args.clip_grad, curriculum=args.curriculum, noise=args.noise,
                         pushforward=args.pushforward, val_steps=args.val_steps, guard=args.guard,
                         max_time=args.max_time, budget_clock=args.budget_clock)
    path = save_model(model, args.out, overwrite=args.overwrite)
    best = history["best_val_loss"]
    print(f"wrote {path} (best epoch {history['best_epoch']}, validation rollout RMSE "
          f"{'-' if best is None else format(best, '.4g')})")
    return 0


def _cmd_forecast(args) -> int:
    from xequi.forecast import forecast, parse_init_time

    ds = _open_input(args)
    fc = forecast(ds, args.model, steps=args.steps, init_time=parse_init_time(args.init_time, ds),
                  fill=args.fill, batch_size=args.batch_size, device=args.device,
                  progress=not args.quiet, out=args.out, overwrite=args.overwrite)
    print(f"wrote {args.out}: {dict(fc.sizes)}")
    return 0


def _cmd_evaluate(args) -> int:
    import xarray as xr

    from xequi.diagnostics import evaluate

    fpath = Path(args.forecast)
    if not fpath.exists():
        raise ParameterError(f"forecast {args.forecast!r} does not exist.",
                             fix="run `xequi forecast ... --out FILE` first")
    fc = xr.open_zarr(fpath) if fpath.suffix.lower() == ".zarr" else xr.open_dataset(fpath)
    truth = _open_input(args, "truth")
    metrics = tuple(args.metrics.split(",")) if args.metrics else None
    kwargs = {"metrics": metrics} if metrics else {}
    result = evaluate(fc, truth, reference="persistence" if args.persistence else None, **kwargs)
    with xr.set_options(display_width=120):
        print(result.load())
    if args.out:
        _write(result, args.out, args.overwrite)
        print(f"wrote {args.out}")
    return 0


def _add_input(p, data_help: str = "input .zarr or .nc (instead of a catalog entry)") -> None:
    p.add_argument("--data", help=data_help)
    p.add_argument("--catalog", help="intake catalog YAML (default: xequi's own catalog)")
    p.add_argument("--entry", default="rayleigh_benard", help="catalog entry (default: %(default)s)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="catalog entry parameter, repeatable (e.g. --param preset=default)")


def _cmd_demo(args) -> int:
    from xequi.demo import run_demo

    run_demo(out_dir=args.out_dir, progress=not args.quiet)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser of the ``xequi`` command.

    Returns
    -------
    argparse.ArgumentParser
        With one subparser per command (``simulate``, ``train``, ``forecast``, ``evaluate``,
        ``demo``); ``docs/cli.md`` is generated from it (``scripts/gen_cli_docs.py``).

    Examples
    --------
    >>> args = build_parser().parse_args(["forecast", "--model", "rot-resnet", "--out", "f.zarr"])
    >>> args.command, args.model, args.steps, args.entry
    ('forecast', 'rot-resnet', 10, 'rayleigh_benard')
    """
    from xequi._version import __version__

    parser = argparse.ArgumentParser(prog="xequi", description=__doc__)
    parser.add_argument("--version", action="version", version=f"xequi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_simulate_command(sub)
    _add_train_command(sub)
    _add_forecast_command(sub)
    _add_evaluate_command(sub)
    _add_demo_command(sub)
    return parser


def _add_simulate_command(sub) -> None:
    """The ``simulate`` command: a simulator run written to zarr / netCDF."""
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


def _float_or_none(text: str):
    """A number, or None for 'none' (argparse type of the train command's optional limits)."""
    return None if text.strip().lower() == "none" else float(text)


def _add_train_command(sub) -> None:
    """The ``train`` command: fit a registered model, save it with its model card."""
    tr = sub.add_parser("train", help="fit a model to a dataset and save it with its model card")
    _add_input(tr)
    tr.add_argument("--model", required=True, help="registered model name (e.g. rot-resnet)")
    tr.add_argument("--variables", help="comma-separated variables to keep (default: all)")
    tr.add_argument("--scalars", help="comma-separated scalar variables to train on after u, v "
                                      "(e.g. temperature)")
    tr.add_argument("--no-velocity", dest="no_velocity", action="store_true",
                    help="a scalar-only model on the --scalars variables (no u, v)")
    tr.add_argument("--t-in", dest="t_in", type=int, default=None, help="input frames")
    tr.add_argument("--size", default="small", choices=["small", "paper"])
    tr.add_argument("--epochs", type=int, default=100)
    tr.add_argument("--batch-size", dest="batch_size", type=int, default=16)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--window", type=int, default=64)
    tr.add_argument("--augment", help="comma-separated symmetry kinds for augmentation (e.g. rot90,um)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="auto")
    tr.add_argument("--checkpoint-dir", dest="checkpoint_dir", help="resumable training state")
    tr.add_argument("--max-time", dest="max_time", type=float, default=None,
                    help="wall-clock budget in seconds (the schedule anneals over it)")
    tr.add_argument("--budget-clock", dest="budget_clock", default="wall",
                    choices=["wall", "cpu"],
                    help="what --max-time counts: wall-clock seconds, or the CPU seconds of the "
                         "process (equal compute on a shared machine)")
    tr.add_argument("--schedule", default="cosine", choices=["cosine", "exponential"],
                    help="warmup + cosine decay per iteration, or x0.95 per epoch (the paper's)")
    tr.add_argument("--warmup", type=float, default=0.05, help="warmup fraction of the budget")
    tr.add_argument("--optimizer", default="adamw", choices=["adamw", "adam"])
    tr.add_argument("--clip-grad", dest="clip_grad", type=_float_or_none, default=1.0,
                    help="global gradient-norm clip ('none': no clipping)")
    tr.add_argument("--curriculum", type=float, default=0.5,
                    help="budget fraction at which the full rollout is reached (0: none)")
    tr.add_argument("--noise", type=float, default=0.0,
                    help="input noise std as a fraction of the data's std (training only)")
    tr.add_argument("--pushforward", type=int, default=0,
                    help="steps unrolled without gradient before the loss's rollout")
    tr.add_argument("--val-steps", dest="val_steps", type=int, default=None,
                    help="validation rollout length (default: 3 x the training rollout)")
    tr.add_argument("--guard", type=_float_or_none, default=3.0,
                    help="divergence guard factor over the best validation score ('none': off)")
    tr.add_argument("--out", required=True, help="output checkpoint (.xequi)")
    tr.add_argument("--overwrite", action="store_true")
    tr.add_argument("--quiet", action="store_true")
    tr.set_defaults(func=_cmd_train)


def _add_forecast_command(sub) -> None:
    """The ``forecast`` command: a forecast written to zarr / netCDF."""
    fc = sub.add_parser("forecast", help="forecast with a model and write the result")
    _add_input(fc)
    fc.add_argument("--model", required=True, help="pretrained name or .xequi checkpoint path")
    fc.add_argument("--steps", type=int, default=10)
    fc.add_argument("--init-time", dest="init_time",
                    help="'last' (default), a time, 'a,b,c' or a range 'a..b'")
    fc.add_argument("--fill", default="error", choices=["error", "zero"],
                    help="NaN (land) handling: error, or zero velocity (default: %(default)s)")
    fc.add_argument("--batch-size", dest="batch_size", type=int, default=None)
    fc.add_argument("--device", default="auto")
    fc.add_argument("--out", required=True, help="output path, .zarr or .nc")
    fc.add_argument("--overwrite", action="store_true")
    fc.add_argument("--quiet", action="store_true")
    fc.set_defaults(func=_cmd_forecast)


def _add_evaluate_command(sub) -> None:
    """The ``evaluate`` command: a forecast scored against the truth."""
    ev = sub.add_parser("evaluate", help="score a forecast against the truth")
    ev.add_argument("--forecast", required=True, help="forecast .zarr or .nc")
    _add_input(ev, "truth .zarr or .nc (instead of a catalog entry)")
    ev.add_argument("--metrics", help="comma-separated metrics (default: all)")
    ev.add_argument("--persistence", action="store_true", help="also score persistence")
    ev.add_argument("--out", help="write the metrics to .nc or .zarr")
    ev.add_argument("--overwrite", action="store_true")
    ev.set_defaults(func=_cmd_evaluate)


def _add_demo_command(sub) -> None:
    """The ``demo`` command: the main job on the built-in default data."""
    demo = sub.add_parser("demo", help="run the main job on the built-in default data")
    demo.add_argument("--out-dir", default="demo-output", help="where outputs go (default: %(default)s)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=_cmd_demo)


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

    Raises
    ------
    SystemExit
        From argparse, for ``--help``, ``--version`` or unparseable arguments (status 2).
        Errors of xequi itself (:class:`~xequi.errors.XequiError`) are not raised: they become
        exit status 2.

    Examples
    --------
    >>> main(["evaluate", "--forecast", "no-such-forecast.zarr"])
    2
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
