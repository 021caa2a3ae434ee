"""The search's flags (`python -m tune_vqvae.search --help`) and `--smoke`'s defaults; `_cli`
turns them into a checked `SearchConfig`."""

from __future__ import annotations

import argparse
import time

from .. import objectives
from ..losses import PERCEPTUAL_LOSSES
from ..stats.sequential import DEFAULT_ROUNDS
from ._config import SearchConfig

DESCRIPTION = "Search the weight w of `mse + w * L` with Optuna, each trial a VQ-VAE run under Ray Tune."

def smoke_settings(a: argparse.Namespace) -> None:
    """--smoke: tiny model, few images, few trials and epochs, offline built-in data."""
    defaults = dict(loss=["gmsd"], num_samples=8, epochs=4, hidden=16, codebook_size=32,
                    builtin_train=2048, builtin_test=256, holdout=256, val_images=128, batch_size=32,
                    fid_samples=128, max_concurrent=2, data="builtin",
                    name=f"smoke-{time.strftime('%Y%m%d-%H%M%S')}")
    for key, value in defaults.items():
        if getattr(a, key, None) is None:
            setattr(a, key, value)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m tune_vqvae.search",
                                description=DESCRIPTION,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    d = SearchConfig(losses=[])
    p.add_argument("--loss", action="append", help=f"loss to search (repeatable), or all: "
                   f"{', '.join(PERCEPTUAL_LOSSES)}; default: the --space file's losses")
    p.add_argument("--space", help="search-space YAML for all losses (default: "
                   "search_spaces/<loss>.yaml; search_spaces/paper_grid.yaml = the paper's grid)")
    p.add_argument("--num-samples", type=int, help=f"Optuna trials per loss incl. the paper points "
                   f"(default {d.num_samples}); one MSE baseline trial runs in addition")
    p.add_argument("--epochs", type=int, help=f"epochs per trial (default {d.epochs})")
    p.add_argument("--max-concurrent", type=int,
                   help=f"running trials per loss at most (default {d.max_concurrent})")
    p.add_argument("--cpus-per-trial", type=float, help=f"default {d.cpus_per_trial:g}")
    p.add_argument("--gpus-per-trial", type=float,
                   help="fractional packs trials on a GPU, e.g. 0.25 "
                   "(default: 0.5 if the cluster has GPUs, else 0)")
    p.add_argument("--data", help="builtin (offline default) | cifar10 | FILE.npz")
    p.add_argument("--train-images", type=int, help="use the first N training images")
    p.add_argument("--val-images", type=int, help=f"held-out images for val metrics (default {d.val_images})")
    p.add_argument("--holdout", type=int,
                   help="select w on the last N training images (not trained on) and report the "
                   "test split's scores of every finished trial as test_<objective> "
                   "(default 0: select on the test images, the paper's protocol)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--hidden", type=int, help=f"model width (default {d.hidden})")
    p.add_argument("--codebook-size", type=int, help=f"default {d.codebook_size}")
    p.add_argument("--objective", action="append",
                   help=f"metric to minimise: {', '.join(objectives.OBJECTIVES)} (PSNR/SSIM "
                   "are maximised); default fid (needs its weights; --smoke falls back to swd). "
                   "Twice (e.g. --objective swd --objective val_psnr): a two-objective search whose "
                   "answer is the estimated front over w (see README, Perception-distortion front)")
    p.add_argument("--fid-weights",
                   help="Inception weights file for FID (pt_inception-2015-12-05-6726825d.pth)")
    p.add_argument("--lpips-weights", metavar="DIR", help="directory holding LPIPS's two weights files, "
                   "the same path on every node (for --loss lpips offline; default: "
                   "$TUNE_VQVAE_LPIPS_WEIGHTS, else the torch hub cache)")
    p.add_argument("--fid-samples", type=int, help=f"images scored by FID/SWD: of the test split, or of "
                   f"the --holdout (default {d.fid_samples})")
    p.add_argument("--eval-every", type=int, help="FID/SWD every N epochs and at the last (default 1)")
    p.add_argument("--storage-path",
                   help=f"where experiments go: a dir, NFS, or s3://... (default {d.storage_path})")
    p.add_argument("--name", help="experiment name (default <losses>-<time>)")
    p.add_argument("--resume", nargs="?", const=True, metavar="DIR",
                   help="continue an interrupted search: DIR, or --storage-path/--name; "
                   "its saved settings are used")
    p.add_argument("--seed", type=int, help="seed of the training runs and of the sampler")
    p.add_argument("--address", help="Ray cluster to use (host:port, ray://host:10001 or auto); "
                   "default: start a local one")
    p.add_argument("--early-stop", action=argparse.BooleanOptionalAction, default=None,
                   help="ASHA early stopping of searched trials (default off: on short budgets it "
                   "stops the small weights that are only slower early; see README, Benchmark of "
                   "the search)")
    p.add_argument("--grace-period", type=int,
                   help="with --early-stop: epochs before ASHA may stop a trial (default epochs // 3)")
    p.add_argument("--max-failures", type=int,
                   help=f"retries of a crashed trial from its last checkpoint (default {d.max_failures})")
    p.add_argument("--seeds", type=int,
                   help="after the search, re-run the best config of each loss and the MSE "
                   "baseline N more times, seeds --seed + baseline-seeds .. (mean ± std in the "
                   "report); with --resume DIR, adds them to a finished search")
    p.add_argument("--replicates", type=int,
                   help=f"runs of each w the sampler proposes, the paper points included, each on a "
                   f"seed of its own (--seed + 500 + its trial number); each run is one of "
                   f"--num-samples (default {d.replicates})")
    p.add_argument("--baseline-seeds", type=int,
                   help=f"runs of the MSE baseline, seeds --seed.. (default {d.baseline_seeds}); its "
                   "spread is the run-to-run noise every verdict rests on")
    p.add_argument("--confirm-seeds", type=int,
                   help=f"the fixed confirmation instead of the race: after the search, re-run the "
                   f"surrogate's recommended w, the best paper point and the best observed w with N "
                   f"fresh seeds each; the verdicts come from them (0: no confirmation, no verdicts; "
                   f"{d.confirm_seeds} where --confirm-budget 0 chooses it)")
    p.add_argument("--confirm-budget", type=int, metavar="N",
                   help=f"the sequential confirmation (the default): N runs (the baseline's included) "
                   f"spent in rounds of one common seed for the baseline and every candidate still in "
                   f"the race, until every verdict is resolved (default {DEFAULT_ROUNDS} rounds: "
                   f"{DEFAULT_ROUNDS} x (B + losses) runs; 0: the fixed --confirm-seeds stage; see "
                   f"README, Paired, sequential confirmation)")
    p.add_argument("--race-baseline-runs", metavar="B",
                   help=f"with the race: runs of the MSE baseline per round, the common seed "
                   f"and B-1 of its own, their mean paired with each candidate (default "
                   f"{d.race_baseline_runs}); a round costs B + candidates runs of the budget")
    p.add_argument("--min-effect", metavar="P",
                   help=f"equivalence margin of the verdicts against the MSE baseline, in %% of its "
                   f"mean: a candidate whose interval lies within +-P%% is \"equivalent\" (default "
                   f"{d.min_effect:g})")
    p.add_argument("--constraint", metavar="BUDGET",
                   help="a distortion budget relative to the MSE baseline's mean, e.g. 'val_psnr >= -0.2' "
                   "(dB) or 'val_psnr >= -1%%': the sampler proposes within it, the answer recommends "
                   "the best w within it (the baseline runs first; see README, Distortion budget)")
    p.add_argument("--log-to", action="append", metavar="TRACKER",
                   help="also log every trial's config and per-epoch metrics, and the search's answer, to "
                   "an experiment tracker (repeatable): mlflow, wandb (pip install 'tune_vqvae[trackers]')")
    p.add_argument("--mlflow-uri", help="with --log-to mlflow: its tracking URI (default "
                   "$MLFLOW_TRACKING_URI, else the file store mlruns/ beside the search directories)")
    p.add_argument("--mock-curve",
                   help="with --mock: known (default), realistic, no_gain or module:function "
                   "(see tune_vqvae.curves)")
    p.add_argument("--smoke", action="store_true",
                   help="tiny end-to-end search on the built-in data, CPU, < 3 min")
    p.add_argument("--mock", action="store_true", help="mock trainable (tests of the search machinery)")
    p.add_argument("--faults", help=argparse.SUPPRESS)  # JSON fault injection, tests only
    p.add_argument("--num-cpus", type=int, help=argparse.SUPPRESS)  # local cluster size (tests)
    return p
