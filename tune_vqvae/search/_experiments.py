"""The Tune experiments of a search: where they live, and one way to build or restore each.

    <storage-path>/<name>/   search.json, optuna_journal.log, results.csv, results.json,
                             baseline/, <loss>/, <loss>-confirm/ and baseline-confirm/
                             (the confirmation stage),
                             and with --seeds baseline-seeds/, <loss>-seeds/

With a URI as storage (s3://BUCKET/PATH?endpoint_override=...) the experiments go to
<URI path>/<name>/ and the search-level files to $TUNE_VQVAE_CACHE/searches/<name> on the
driver (see `Layout`).
"""

from __future__ import annotations

from collections.abc import Callable

from ray import tune
from ray.tune.search.basic_variant import BasicVariantGenerator

from .. import objectives
from ..stats.constrained import budget_baseline
from ..trainable import train_vqvae
from ..vocab import (
    BASELINE,
    BASELINE_EXPERIMENT,
    CONFIRM_SEED_OFFSET,
    CONFIRM_SUFFIX,
    SEARCH,
    SEEDS_SUFFIX,
    config_label,
    dir_tag,
    joint_weights,
    race_seeds,
    rerun_seeds,
)
from . import _trackers
from ._config import SearchConfig
from ._layout import JournalUpload, Layout, local_searches_dir  # noqa: F401  (the experiments' surface)
from ._optuna import WeightSampler, WeightSearch, WeightSpace
from ._results import collect_rows
from ._runner import Progress, run_experiments, say
from ._scheduler import ProtectedASHA
from ._spaces import SearchSpace


def trial_dirname(trial) -> str:
    c = trial.config
    w = joint_weights(c) or c.get("w")  # a joint loss: its (w1, w2)
    return f"{trial.trial_id}_{dir_tag(c.get('role'), c.get('with_mse', True), w)}"


def searched_metrics(cfg: SearchConfig) -> dict:
    """What the sampler optimises: the reported `objective` (minimised), and with a second
    --objective that metric too, in its own direction (a two-objective study: the front)."""
    if cfg.trade_off is None:
        return {"metric": "objective", "mode": "min"}
    return {"metric": ["objective", cfg.trade_off], "mode": ["min", objectives.get(cfg.trade_off).mode]}


def trainable_for(cfg: SearchConfig, data_ref):
    """The trainable of every trial, its dataset shared through Ray's object store."""
    from ..testing import mock_trainable  # only --mock searches need the test support

    fn = mock_trainable if cfg.mock else train_vqvae
    resources = {"cpu": cfg.cpus_per_trial, "gpu": cfg.gpus_per_trial or 0}
    return tune.with_resources(tune.with_parameters(fn, data=[data_ref]), resources)


class Experiments:
    """Builds (or, resuming, restores) the Tune experiments of one search, each as a job for
    `run_experiments`: a callable returning its ResultGrid."""

    def __init__(self, cfg: SearchConfig, layout: Layout, resume: bool, trainable, base_config: dict):
        self.cfg, self.layout, self.resume = cfg, layout, resume
        self.trainable, self.base_config = trainable, base_config

    def tuner(self, exp: str, point: dict, num_samples: int = 1, **tune_config) -> tune.Tuner:
        """The one Tuner factory: experiment `exp` of trials with `point` over the base config."""
        uses_journal = self.layout.remote and isinstance(tune_config.get("search_alg"), WeightSearch)
        run_config = tune.RunConfig(
            name=exp,
            storage_path=self.layout.storage,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=self.cfg.max_failures),
            sync_config=tune.SyncConfig(sync_artifacts=True),  # TensorBoard events of every trial
            verbose=0,
            callbacks=[Progress(exp, self.cfg.epochs, self.base_config["objective"])]
            + ([JournalUpload(self.layout.storage_path, self.layout.name)] if uses_journal else [])
            + _trackers.callbacks(self.cfg.log_to, _trackers.mlflow_uri(self.cfg, self.layout),
                                  self.layout.name, exp),
        )
        return tune.Tuner(
            self.trainable,
            param_space={**self.base_config, **point},
            tune_config=tune.TuneConfig(metric="objective", mode="min", num_samples=num_samples,
                                        trial_dirname_creator=trial_dirname, **tune_config),
            run_config=run_config,
        )

    def job(self, exp: str, build: Callable[[], tune.Tuner]) -> Callable:
        """Fit the experiment `exp`: restored when resuming (an interrupted search goes on:
        Tune re-runs nothing that finished, and continues its trials from their checkpoints),
        else built new."""
        path = self.layout.experiment(exp)

        def fit():
            if self.resume and tune.Tuner.can_restore(path):
                return tune.Tuner.restore(path, trainable=self.trainable, resume_unfinished=True,
                                          resume_errored=True).fit()
            return build().fit()

        return fit

    def seeds(self, seeds: list[int]) -> dict:
        """The base TrainConfig with a grid over its seed: one trial per seed."""
        return {**self.base_config["train"], "seed": tune.grid_search(seeds)}

    def baseline(self) -> Callable:
        """The MSE baseline with seeds --seed .. --seed + baseline_seeds - 1: every comparison
        leans on it, so it is replicated from the start (its run-to-run noise is measured)."""
        seeds = [self.cfg.seed + k for k in range(self.cfg.baseline_seeds)]
        return self.job(BASELINE_EXPERIMENT, lambda: self.tuner(
            BASELINE_EXPERIMENT, {"role": BASELINE, "loss": "mse", "train": self.seeds(seeds)},
            max_concurrent_trials=self.cfg.max_concurrent))

    def search_stage(self, spaces: dict[str, SearchSpace], journal, objective: str) -> list[dict]:
        """The rows of the search stage: the MSE baseline and every loss's Optuna search, run
        at once; with a distortion budget (--constraint) the baseline first, to completion.

        Why first: each proposal's budget is relative to the baseline's mean of the
        constrained metric, so the sampler needs that mean before its first GP proposal, and
        it must stay one number for the whole search (the constrained acquisition that
        proposed a w, and a resumed search, see the same budget). The first proposal comes
        only after the paper points have run anyway, so the wait costs about one trial's
        duration. Resuming, the finished baseline experiment is restored (nothing re-runs)
        and the same mean recomputed from its rows."""
        cfg, budget, mean, rows = self.cfg, self.cfg.budget, None, []
        jobs = {BASELINE_EXPERIMENT: self.baseline()}
        if budget is not None:
            for exp, grid in run_experiments(jobs).items():
                rows.extend(collect_rows(exp, grid, cfg, None, objective))
            jobs, values = {}, budget_baseline(rows, cfg.epochs, budget)
            if values:
                mean = sum(values) / len(values)
                say(f"budget: {budget.describe()}: the baseline's mean {budget.metric} {mean:.4g} "
                    f"({len(values)} runs), so {budget.metric} {budget.op} {budget.threshold(mean):.4g}")
            else:
                say(f"budget: no full-length MSE baseline run reported {budget.metric}: the sampler "
                    f"proposes without the budget")
        jobs.update({loss: self.search(loss, spaces[loss], journal, mean) for loss in cfg.losses})
        for exp, grid in run_experiments(jobs).items():
            rows.extend(collect_rows(exp, grid, cfg, spaces.get(exp), objective))
        return rows

    def search(self, loss: str, space: SearchSpace, journal, baseline_mean: float | None = None) -> Callable:
        """The Optuna search of one loss: its own study in the journal, ASHA unless a grid;
        with a budget and the baseline's mean of its metric, the sampler proposes within it."""
        cfg = self.cfg
        budget = cfg.budget if baseline_mean is not None else None

        def build():
            searcher = WeightSearch(
                space=WeightSpace(space), **searched_metrics(cfg),
                points_to_evaluate=[dict(p) for p in space.points],
                sampler=WeightSampler(seed=cfg.seed, constraint=budget, baseline_mean=baseline_mean),
                study_name=loss, storage=journal, epochs=cfg.epochs, replicates=cfg.replicates,
                run_seed=cfg.seed, constraint_metric=cfg.budget and cfg.budget.metric,
            )
            scheduler = None
            if cfg.early_stop and not space.grid and cfg.epochs > 1:
                scheduler = ProtectedASHA(space, time_attr="epoch", max_t=cfg.epochs,
                                          grace_period=cfg.grace, reduction_factor=3)
            return self.tuner(loss, {"role": SEARCH, "loss": loss},
                              num_samples=len(space.points) if space.grid else cfg.num_samples,
                              search_alg=searcher, scheduler=scheduler,
                              max_concurrent_trials=cfg.max_concurrent, reuse_actors=True)

        return self.job(loss, build)

    def seed_reruns(self, summary: dict) -> dict[str, Callable]:
        """--seeds N: jobs re-running the MSE baseline and each loss's best config with N seeds
        after the baseline's own (`vocab.rerun_seeds`, a grid over train.seed), each an
        experiment of its own (baseline-seeds/, <loss>-seeds/) in the search directory,
        resumable like the others."""
        cfg = self.cfg
        seeds = rerun_seeds(cfg.seed, cfg.baseline_seeds, cfg.seeds)
        train = self.seeds(seeds)
        points = {BASELINE_EXPERIMENT: {"role": BASELINE, "loss": "mse"}}
        for loss in cfg.losses:
            best = (summary.get(loss) or {}).get("best")
            if best is None:
                say(f"[{loss}] no completed trial: no seed re-runs")
                continue
            points[loss] = {"role": SEARCH, "loss": loss, "with_mse": best["with_mse"], "w": best["w"],
                            **best.get("weights", {})}  # a joint loss's w1, w2
        say(f"re-running {', '.join(config_label(p) for p in points.values())} with seeds "
            f"{', '.join(map(str, seeds))}")

        def job(exp, point):
            return self.job(exp, lambda: self.tuner(exp, {**point, "train": train},
                                                    max_concurrent_trials=cfg.max_concurrent))

        return {exp + SEEDS_SUFFIX: job(exp + SEEDS_SUFFIX, point) for exp, point in points.items()}

    def confirmations(self, named: dict[str, dict[str, dict]]) -> dict[str, Callable]:
        """The confirmation stage: per loss, its candidates {name: point} (names of one point
        joined by "+", see `answer.merge_candidates`) each re-run with the fresh seeds
        --seed + CONFIRM_SEED_OFFSET + k, k < confirm_seeds, in the experiment <loss>-confirm:
        each candidate a preset point of Tune's variant generator, crossed with a seed grid;
        and the MSE baseline on the same seeds (baseline-confirm, shared by every loss), so a
        verdict pairs same-seed runs (`stats.paired`)."""
        cfg = self.cfg
        seeds = [cfg.seed + CONFIRM_SEED_OFFSET + k for k in range(cfg.confirm_seeds)]
        jobs = {}
        for loss, points in named.items():
            if not points:
                say(f"confirmation of {loss}: no candidate (no full-length run)")
                continue
            which = ", ".join(f"{name} {config_label({**p, 'loss': loss})}" for name, p in points.items())
            say(f"confirmation of {loss}: {which} with seeds {', '.join(map(str, seeds))}")
            preset = [{"candidate": name, "w": None, **p} for name, p in points.items()]  # joint: w1, w2
            common = {"role": SEARCH, "loss": loss, "stage": "confirm", "candidate": None,
                      **{k: None for p in preset for k in p if k not in ("candidate", "with_mse", "w")},
                      "train": self.seeds(seeds)}  # preset keys must exist in the space
            exp = loss + CONFIRM_SUFFIX
            # each preset point runs once per seed of the grid
            jobs[exp] = self.job(exp, lambda exp=exp, common=common, preset=preset: self.tuner(
                exp, common, num_samples=len(preset),
                search_alg=BasicVariantGenerator(points_to_evaluate=preset,
                                                 max_concurrent=cfg.max_concurrent)))
        if jobs:  # common random numbers: the baseline on the same seeds pairs every verdict
            exp = BASELINE_EXPERIMENT + CONFIRM_SUFFIX
            say(f"confirmation of the MSE baseline with seeds {', '.join(map(str, seeds))}")
            jobs[exp] = self.job(exp, lambda: self.tuner(
                exp, {"role": BASELINE, "loss": "mse", "stage": "confirm", "train": self.seeds(seeds)},
                max_concurrent_trials=cfg.max_concurrent))
        return jobs

    def race_round(self, exp: str, rounds: list[int], points: dict[str, dict]) -> Callable:
        """One look's experiment of the sequential confirmation (`stats.race`): rounds `rounds`,
        round k of the MSE baseline on its seeds (`vocab.race_seeds`: the common one
        --seed + RACE_SEED_OFFSET + k, and --race-baseline-runs - 1 of its own) and of
        `points` ({"loss:candidate": point} still in the race) on the common one, each run a
        preset point of Tune's variant generator that says its round."""
        base = {"role": BASELINE, "loss": "mse", "candidate": None, "with_mse": True, "w": None}
        configs = [{"role": SEARCH, "loss": key.partition(":")[0], "candidate": key.partition(":")[2],
                    "w": None, **p} for key, p in points.items()]
        preset = []
        for k in rounds:
            seeds = race_seeds(self.cfg.seed, k, self.cfg.race_baseline_runs)
            preset += [{**base, "round": k, "train": {"seed": s}} for s in seeds]
            preset += [{**c, "round": k, "train": {"seed": seeds[0]}} for c in configs]
        common = {"stage": "confirm", **{key: None for p in preset for key in p
                                         if key not in ("train", "with_mse", "w")}}  # preset keys must exist
        search = BasicVariantGenerator(points_to_evaluate=preset, max_concurrent=self.cfg.max_concurrent)
        return self.job(exp, lambda: self.tuner(exp, common, num_samples=len(preset), search_alg=search))
