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
from ._args import build_parser, smoke_settings
from ._config import SearchConfig, number, resolve_objective, resolve_spaces, train_config_dict, whole
from ._confirm import confirm, search_answer
from ._experiments import Experiments, Layout, trainable_for
from ._optuna import journal_storage
from ._results import collect_rows, format_table, summarise, write_results
from ._runner import quiet_console, run_experiments, say
from ._spaces import SearchSpace


def config_from_args(a: argparse.Namespace) -> SearchConfig:
    if a.smoke:
        smoke_settings(a)
    losses: list[str] = []
    for name in a.loss or []:
        losses.extend(PERCEPTUAL_LOSSES if name == "all" else [name])
    values = {k: v for k, v in vars(a).items() if v is not None and k in
              {f.name for f in dataclasses.fields(SearchConfig)}}
    values["losses"] = list(dict.fromkeys(losses))
    # --objective once, or twice for a front: the first and the trade-off (bad lists: exit 2)
    values["objective"], values["trade_off"] = objectives.pair(a.objective)
    if a.min_effect is not None:  # read by `number`, not argparse: a bad value is one line, exit 2
        values["min_effect"] = number("--min-effect", a.min_effect)
    if a.race_baseline_runs is not None:
        values["race_baseline_runs"] = whole("--race-baseline-runs", a.race_baseline_runs)
    if a.confirm_budget and a.confirm_seeds is not None:
        raise UserError("--confirm-budget replaces --confirm-seeds (the race decides how many seeds "
                        "each candidate gets); give one of them")
    if a.confirm_seeds is not None and a.confirm_budget is None:  # the fixed stage, not the race
        values["confirm_budget"] = 0
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
RESUME_MAY_SET = ("seeds", "confirm_seeds", "confirm_budget", "race_baseline_runs", "storage_path", "name")
FLAGS = {"losses": "--loss", "trade_off": "--objective"}  # a setting's flag, where not its name


def refuse_changed_settings(a: argparse.Namespace, saved: SearchConfig, settings_file: Path) -> None:
    """--resume with a flag that would change a saved setting: refused (exit 2), never ignored."""
    defaults = build_parser()
    given = {k for k, v in vars(a).items() if v != defaults.get_default(k)}
    given = {"losses" if k == "loss" else k for k in given}
    if "objective" in given:  # --objective sets both: `--objective swd` alone drops a saved front
        given.add("trade_off")
    new = config_from_args(argparse.Namespace(**{**vars(a), "smoke": False}))
    new.smoke = a.smoke

    changed = []
    for f in dataclasses.fields(SearchConfig):
        value, kept = getattr(new, f.name), getattr(saved, f.name)
        if f.name in given and f.name not in RESUME_MAY_SET and value != kept:
            flag = FLAGS.get(f.name, "--" + f.name.replace("_", "-"))
            changed.append(f"{flag} {_shown(value)} (saved: {_shown(kept)})")
    if changed:
        raise UserError(f"--resume keeps the search's settings ({settings_file}); {', '.join(changed)} "
                        f"would change them: drop the flag, or start a new search with another --name")


def check_race_unchanged(saved: SearchConfig, layout: Layout, budget: int, baseline_runs: int) -> None:
    """A started race keeps its budget and its baseline runs a round: its looks' levels were
    spent by them, its rounds' baseline means made of them (stats.sequential)."""
    if (budget, baseline_runs) == (saved.confirm_budget, saved.race_baseline_runs):
        return
    if tune.Tuner.can_restore(layout.experiment(race_experiment(FIRST_LOOK))):
        if budget == 0:
            raise UserError(f"--resume: this search's sequential confirmation has started (--confirm-budget "
                            f"{saved.confirm_budget}); the fixed stage would set its verdicts aside: drop "
                            f"--confirm-seeds (or --confirm-budget 0), or start a new search")
        flag, kept, new = ("--confirm-budget", saved.confirm_budget, budget)
        if budget == saved.confirm_budget:
            flag, kept, new = ("--race-baseline-runs", saved.race_baseline_runs, baseline_runs)
        raise UserError(f"--resume: this search's sequential confirmation has started with {flag} "
                        f"{kept}; its verdicts' levels depend on it: drop {flag} {new}, or start a "
                        f"new search")


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
        fixed = a.confirm_seeds is not None and a.confirm_budget is None  # as in a new search
        if a.confirm_budget is not None or a.race_baseline_runs is not None or fixed:
            budget = 0 if fixed else cfg.confirm_budget if a.confirm_budget is None else a.confirm_budget
            runs = (cfg.race_baseline_runs if a.race_baseline_runs is None
                    else whole("--race-baseline-runs", a.race_baseline_runs))
            check_race_unchanged(cfg, layout, budget, runs)
            cfg.confirm_budget, cfg.race_baseline_runs = budget, runs
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
                or a.confirm_budget is not None or a.race_baseline_runs is not None)


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
        f"{cfg.epochs} epochs each; objective {objective} ({plan.why})"
        f"{f', front against {cfg.trade_off}' if cfg.trade_off else ''}; "
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
