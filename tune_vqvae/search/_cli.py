"""Search the weight w of `mse + w * L` with Optuna, each trial a VQ-VAE run under Ray Tune.

The command line: flags -> `SearchConfig` and the experiment directory, everything checked
before Ray starts (bad input exits 2 and leaves nothing behind); then `run`.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import ray
from ray import tune

from .. import constraints, objectives
from ..data import DataConfig, load_data
from ..errors import UserError, atomic_write_text, cli_entry, remove_empty_dirs, terminate_like_ctrl_c
from ..losses import PERCEPTUAL_LOSSES, lpips
from ..stats.sequential import FIRST_LOOK
from ..train import TrainConfig, check_image_size
from ..vocab import (
    JOURNAL_FILE,
    RESULTS_CSV,
    RESULTS_JSON,
    SETTINGS_FILE,
    race_experiment,
)
from . import _cluster, _trackers
from ._config import SearchConfig, number, resolve_objective, resolve_spaces, train_config_dict
from ._confirm import confirm, search_answer
from ._experiments import Experiments, Layout, trainable_for
from ._optuna import journal_storage
from ._results import collect_rows, format_table, summarise, write_results
from ._runner import quiet_console, run_experiments, say
from ._spaces import SearchSpace


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
                                description=__doc__.split("\n")[0],
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
    p.add_argument("--objective", help=f"metric to minimise: {', '.join(objectives.OBJECTIVES)} (PSNR/SSIM "
                   "are maximised); default fid (needs its weights; --smoke falls back to swd)")
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
                   "baseline N more times with seeds --seed+1..--seed+N (mean ± std in the "
                   "report); with --resume DIR, adds them to a finished search")
    p.add_argument("--replicates", type=int,
                   help=f"runs (seeds --seed, --seed+1, ...) of each w the sampler proposes, the paper "
                   f"points included; each run is one of --num-samples (default {d.replicates})")
    p.add_argument("--baseline-seeds", type=int,
                   help=f"runs of the MSE baseline, seeds --seed.. (default {d.baseline_seeds}); its "
                   "spread is the run-to-run noise every verdict rests on")
    p.add_argument("--confirm-seeds", type=int,
                   help=f"after the search, re-run the surrogate's recommended w, the best paper point "
                   f"and the best observed w with N fresh seeds each; the verdicts come from them "
                   f"(default {d.confirm_seeds}; 0: no confirmation, no verdicts)")
    p.add_argument("--confirm-budget", type=int, metavar="N",
                   help="sequential confirmation instead of --confirm-seeds: N runs (the baseline's "
                   "included) spent in rounds of one common seed for the baseline and every candidate "
                   "still in the race, until every verdict is resolved (default 0: off; see README, "
                   "Paired, sequential confirmation)")
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


def config_from_args(a: argparse.Namespace) -> SearchConfig:
    if a.smoke:
        smoke_settings(a)
    losses: list[str] = []
    for name in a.loss or []:
        losses.extend(PERCEPTUAL_LOSSES if name == "all" else [name])
    values = {k: v for k, v in vars(a).items() if v is not None and k in
              {f.name for f in dataclasses.fields(SearchConfig)}}
    values["losses"] = list(dict.fromkeys(losses))
    if a.min_effect is not None:  # read by `number`, not argparse: a bad value is one line, exit 2
        values["min_effect"] = number("--min-effect", a.min_effect)
    if a.confirm_budget and a.confirm_seeds is not None:
        raise UserError("--confirm-budget replaces --confirm-seeds (the race decides how many seeds "
                        "each candidate gets); give one of them")
    if a.constraint is not None:  # its canonical form: --resume compares it with the saved one
        values["constraint"] = str(constraints.parse(a.constraint))
    values["log_to"] = list(dict.fromkeys(a.log_to or []))
    if "mlflow" in values["log_to"] and not a.mlflow_uri and os.environ.get("MLFLOW_TRACKING_URI"):
        values["mlflow_uri"] = os.environ["MLFLOW_TRACKING_URI"]  # saved: --resume logs there too
    if a.faults:
        try:
            values["faults"] = json.loads(a.faults)
        except json.JSONDecodeError as e:
            raise UserError(f"--faults is not JSON ({e})") from None
    return SearchConfig(**values)


# What --resume may set; every other setting is the saved search's own (search.json).
RESUME_MAY_SET = ("seeds", "confirm_seeds", "confirm_budget", "storage_path", "name")


def refuse_changed_settings(a: argparse.Namespace, saved: SearchConfig, settings_file: Path) -> None:
    """--resume with a flag that would change a saved setting: refused (exit 2), never ignored."""
    defaults = build_parser()
    given = {k for k, v in vars(a).items() if v != defaults.get_default(k)}
    given = {"losses" if k == "loss" else k for k in given}
    new = config_from_args(argparse.Namespace(**{**vars(a), "smoke": False}))
    new.smoke = a.smoke

    changed = []
    for f in dataclasses.fields(SearchConfig):
        value, kept = getattr(new, f.name), getattr(saved, f.name)
        if f.name in given and f.name not in RESUME_MAY_SET and value != kept:
            flag = "--loss" if f.name == "losses" else "--" + f.name.replace("_", "-")
            changed.append(f"{flag} {_shown(value)} (saved: {_shown(kept)})")
    if changed:
        raise UserError(f"--resume keeps the search's settings ({settings_file}); {', '.join(changed)} "
                        f"would change them: drop the flag, or start a new search with another --name")


def check_race_unchanged(saved: SearchConfig, layout: Layout, budget: int) -> None:
    """A started race keeps its budget: its looks' levels were spent by it (stats.sequential)."""
    started = tune.Tuner.can_restore(layout.experiment(race_experiment(FIRST_LOOK)))
    if budget != saved.confirm_budget and started:
        raise UserError(f"--resume: this search's sequential confirmation has started with --confirm-budget "
                        f"{saved.confirm_budget}; its verdicts' levels depend on it: drop --confirm-budget "
                        f"{budget}, or start a new search")


def _shown(v) -> str:
    if isinstance(v, bool) or v is None:
        return {None: "default", True: "on", False: "off"}[v]
    if isinstance(v, list):
        return ",".join(map(str, v))
    return json.dumps(v) if isinstance(v, dict) else f"{v:g}" if isinstance(v, float) else str(v)


def settings(a: argparse.Namespace) -> tuple[SearchConfig, Layout, bool]:
    """Settings and experiment directory, checked before Ray starts. -> (cfg, layout, resume)."""
    if a.resume:
        if a.resume is True:
            if not a.name:
                raise UserError("--resume needs the experiment: --resume DIR, or --name NAME "
                                "(with the --storage-path of the search)")
            layout = Layout(a.storage_path or SearchConfig.storage_path, a.name)
        else:
            layout = Layout.of(a.resume)  # a directory, or the URI of one (s3://...)
        settings = layout.local / SETTINGS_FILE
        if layout.remote and not settings.is_file():
            layout.fetch()  # a new head node: the copies the search keeps next to its experiments
        if not settings.is_file():
            where = (f"{layout.storage.partition('?')[0]} is not a search experiment (no {SETTINGS_FILE} "
                     f"there nor in {layout.local})" if layout.remote else
                     f"{layout.local} is not a search experiment (no {SETTINGS_FILE})")
            raise UserError(f"--resume: {where}; give the directory an earlier search created")
        try:
            cfg = SearchConfig.from_dict(json.loads(settings.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise UserError(f"--resume: {settings} is unreadable ({e}); "
                            "it is not a search's settings") from None
        refuse_changed_settings(a, cfg, settings)
        if a.seeds is not None:  # --resume DIR --seeds N: add seed re-runs to a search
            cfg.seeds = a.seeds
        if a.confirm_seeds is not None:  # --resume DIR --confirm-seeds N: (re)run the confirmation
            cfg.confirm_seeds = a.confirm_seeds
        if a.confirm_budget is not None:  # --resume DIR --confirm-budget N: start a race
            check_race_unchanged(cfg, layout, a.confirm_budget)
            cfg.confirm_budget = a.confirm_budget
        cfg.validate()
        return cfg, layout, True
    cfg = config_from_args(a)
    cfg.validate()
    if not cfg.name:
        tag = "all" if len(cfg.losses) > 2 else "+".join(cfg.losses) or "search"
        cfg.name = f"{tag}-{time.strftime('%Y%m%d-%H%M%S')}"
    layout = Layout(cfg.storage_path, cfg.name)
    if (layout.local / SETTINGS_FILE).exists():
        raise UserError(f"{layout.local} already holds a search; add --resume to continue it, "
                        f"or pick another --name")
    return cfg, layout, False


@dataclass
class Plan:
    """A search checked and ready to run: what `prepare` found before Ray starts."""

    cfg: SearchConfig
    layout: Layout
    resume: bool
    spaces: dict[str, SearchSpace]
    objective: str
    fid: dict  # FIDConfig of the trials, as a dict
    why: str  # a sentence: why this objective
    train: dict  # TrainConfig of the trials, as a dict
    data: object  # ImageData (None with --mock): shared with the trials via the object store
    address: str | None  # --address, or None: a private local cluster
    num_cpus: int | None  # of the local cluster (tests)
    write_settings: bool  # a new search, or --resume --seeds N: (re)write search.json


def prepare(a: argparse.Namespace) -> Plan:
    """Everything a bad input can break, checked in the order the errors are documented."""
    cfg, layout, resume = settings(a)
    spaces = resolve_spaces(cfg)
    objective, fid, why = resolve_objective(cfg, saved=resume)
    cfg.objective = objective  # saved in search.json: --resume and the report read it, never re-derive it
    train = train_config_dict(cfg)
    data = None
    if not cfg.mock:
        data = load_data(DataConfig(**train["data"]))  # bad --data fails here, exit 2
        TrainConfig.from_dict(train)  # validates epochs, lr, ...
        for loss in [*cfg.losses, "mse"]:  # every loss's smallest image, then the baseline's
            check_image_size(loss, data.image_size, data.name)
    if a.address:
        _cluster.check_address(a.address)
    layout.check_writable()
    return Plan(cfg, layout, resume, spaces, objective, fid, why, train, data, a.address, a.num_cpus,
                write_settings=not resume or a.seeds is not None or a.confirm_seeds is not None
                or a.confirm_budget is not None)


def worker_env(cfg: SearchConfig) -> dict[str, str]:
    """Environment of every trial's worker (a Ray runtime_env): where LPIPS's weights are."""
    return lpips.weights_env(cfg.lpips_weights) if cfg.lpips_weights else {}


@cli_entry
def main(argv=None):
    plan = prepare(build_parser().parse_args(argv))
    try:
        return _connect_and_run(plan)
    except BaseException:
        remove_empty_dirs(plan.layout.created)  # a search that wrote nothing leaves no empty dir
        raise


def _connect_and_run(plan: Plan) -> int:
    quiet_console()
    caller_sigterm = signal.getsignal(signal.SIGTERM)
    started = _cluster.connect(plan.address, plan.num_cpus, worker_env(plan.cfg))
    terminate_like_ctrl_c()  # after ray.init, which sets a SIGTERM handler of its own
    layout = plan.layout
    try:
        # only now: a search that could not start leaves no experiment behind
        if plan.write_settings:
            atomic_write_text(layout.local / SETTINGS_FILE, layout.settings_json(plan.cfg, plan.spaces))
            layout.upload([SETTINGS_FILE])  # URI storage: next to the experiments from the start
        return run(plan)
    except KeyboardInterrupt:
        say(f"continue with: python -m tune_vqvae.search --resume {layout.storage}")
        raise
    except OSError as e:
        if e.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        # The results files are written atomically: the previous ones are intact.
        raise UserError(f"storage path {str(layout.local)!r} is full ({e.strerror}); free space, "
                        f"then continue with --resume {layout.local}") from None
    finally:
        if started:
            ray.shutdown()
        if caller_sigterm is not None:  # a caller in this process (a test, a notebook) gets its own back
            signal.signal(signal.SIGTERM, caller_sigterm)


def run(plan: Plan) -> int:
    """The search on a connected cluster: the baseline and every loss's experiment at once,
    then the seed re-runs; results files and the table."""
    cfg, layout, objective = plan.cfg, plan.layout, plan.objective
    cfg.cpus_per_trial, cfg.gpus_per_trial = _cluster.trial_resources(
        cfg.cpus_per_trial, cfg.gpus_per_trial, cfg.mock, local=not plan.address)
    base_config = {
        "train": plan.train, "objective": objective, "fid": plan.fid, "eval_every": cfg.eval_every,
        "cpus": cfg.cpus_per_trial, "with_mse": True, "w": None, "faults": cfg.faults,
    }
    if cfg.mock:
        base_config["mock_curve"] = cfg.mock_curve
    data_ref = ray.put(plan.data) if plan.data is not None else None
    experiments = Experiments(cfg, layout, plan.resume, trainable_for(cfg, data_ref), base_config)
    journal = journal_storage(layout.local / JOURNAL_FILE)
    n = sum(len(s.points) * cfg.replicates if s.grid else cfg.num_samples for s in plan.spaces.values())
    say(f"search {layout.name}: {', '.join(cfg.losses)}; {n} trials + {cfg.baseline_seeds} MSE baseline, "
        f"{cfg.epochs} epochs each; objective {objective} ({plan.why}); "
        f"{cfg.cpus_per_trial:g} CPU + {cfg.gpus_per_trial:g} GPU per trial; "
        f"{'resuming ' if plan.resume else ''}{layout.storage}")

    _trackers.start(cfg.log_to, _trackers.mlflow_uri(cfg, layout), layout.name)
    start = time.perf_counter()
    rows = experiments.search_stage(plan.spaces, journal, objective)
    summary = summarise(rows, cfg.losses, objective)
    rows.extend(confirm(cfg, experiments, plan.spaces, rows, objective))
    if cfg.seeds:
        for exp, grid in run_experiments(experiments.seed_reruns(summary)).items():
            rows.extend(collect_rows(exp, grid, cfg, None, objective, seeds=True))
    answer = search_answer(cfg, plan.spaces, rows, objective)
    write_results(layout, cfg, objective, rows, summary, answer)
    _trackers.log_answer(cfg.log_to, _trackers.mlflow_uri(cfg, layout), layout.name,
                         dataclasses.asdict(cfg), answer, layout.local)
    say("")
    say(format_table(rows, summary, objective, answer))
    say(f"\n{len(rows)} trials in {time.perf_counter() - start:.0f} s; results: "
        f"{layout.local / RESULTS_CSV}, {layout.local / RESULTS_JSON}")
    say(f"tensorboard --logdir {layout.storage}    optuna-dashboard {layout.local / JOURNAL_FILE}")
    for line in _trackers.where(cfg.log_to, _trackers.mlflow_uri(cfg, layout)):
        say(line)
    return 0
