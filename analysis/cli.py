"""Command line of the analysis: read experiments, compute the tables, write the report."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from tune_vqvae.errors import UserError, cli_entry, ensure_writable_dir
from tune_vqvae.storage import is_uri, local_copy

from .load import choose_objective, load, saved_objective, warnings_of
from .report import build, write
from .tables import analyse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m analysis",
        description="Report of a weight search: per loss the surrogate curve of the objective "
                    "over w, the recommended w with its intervals, verdicts against MSE and the "
                    "paper's grid from replicate runs, the run-to-run noise; compute overhead, "
                    "reconstructions, Pareto front. Works on finished and still-running searches.")
    p.add_argument("experiments", nargs="+", metavar="EXPDIR",
                   help="a search directory (runs/search/<name>, holding baseline/ and one "
                        "directory per loss), or Ray Tune experiment directories; a URI "
                        "(s3://BUCKET/PATH/<name>?endpoint_override=...) is copied to "
                        "$TUNE_VQVAE_CACHE/copies/<name> first")
    p.add_argument("--out", help="report directory (default: <search dir>/analysis)")
    p.add_argument("--objective", help="metric to compare (default: what the search "
                                       "minimised; else fid if reported, else swd)")
    p.add_argument("--images", type=int, default=8, help="held-out images in the "
                   "reconstructions figure (default 8)")
    p.add_argument("--device", default="cpu", help="device for the reconstructions "
                   "(cpu, cuda, auto; default cpu)")
    p.add_argument("--data", help="where the trials' data is here, if not where the search "
                                  "read it (builtin | cifar10 | FILE.npz)")
    p.add_argument("--no-reconstructions", action="store_true",
                   help="skip loading checkpoints")
    return p


def default_out(experiments: list[Path]) -> Path:
    parents = {e.parent for e in experiments}
    base = parents.pop() if len(parents) == 1 else Path(os.path.commonpath(experiments))
    return base / "analysis"


def copied(experiment: str) -> str:
    """A local copy of a search in object storage (the analysis reads local files)."""
    if not is_uri(experiment):
        return experiment
    print(f"copying {experiment.partition('?')[0]} ...", file=sys.stderr, flush=True)
    return str(local_copy(experiment))


@cli_entry
def main(argv=None):
    a = build_parser().parse_args(argv)
    if a.images < 1:
        raise UserError(f"--images must be >= 1, got {a.images}")
    experiments, trials = load([copied(e) for e in a.experiments])
    for line in warnings_of(trials):  # damaged files, an all-failed search: named up front
        print(f"warning: {line}", file=sys.stderr)
    objective = choose_objective(trials, a.objective, saved_objective(experiments))
    analysis = analyse(trials, objective)
    out = ensure_writable_dir(Path(a.out) if a.out else default_out(experiments),
                              "report directory")
    report = build(analysis, experiments, out, requested_objective=bool(a.objective),
                   images=a.images, device=a.device, data_source=a.data,
                   reconstructions=not a.no_reconstructions)
    written = write(analysis, report, out)
    print(f"{len(analysis.trials)} trials of {len(experiments)} experiments, objective "
          f"{objective}; wrote {len(written)} files:")
    print(f"  {out / 'report.html'}")
    print(f"  {out / 'report.md'}")
    return 0
