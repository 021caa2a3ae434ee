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

import dataclasses
import functools
import json
import os
import shutil
import threading
from collections.abc import Callable
from pathlib import Path

from ray import tune
from ray.tune.search.basic_variant import BasicVariantGenerator

from ..data import DEFAULT_CACHE
from ..errors import UserError, atomic_write_bytes, ensure_writable_dir, missing_dirs
from ..storage import is_uri, uri_join, uri_split
from ..trainable import train_vqvae
from ..vocab import (
    BASELINE,
    BASELINE_EXPERIMENT,
    CONFIRM_SEED_OFFSET,
    CONFIRM_SUFFIX,
    JOURNAL_FILE,
    RESULTS_CSV,
    RESULTS_JSON,
    SEARCH,
    SEEDS_SUFFIX,
    SETTINGS_FILE,
    config_label,
    dir_tag,
    joint_weights,
)
from . import _trackers
from ._config import SearchConfig
from ._optuna import WeightSampler, WeightSearch, WeightSpace
from ._runner import Progress, say
from ._scheduler import ProtectedASHA
from ._spaces import SearchSpace

MIN_FREE_BYTES = 64 << 20  # a storage path with less free space is refused up front


def local_searches_dir() -> Path:
    """Where a search with URI storage keeps its search-level files (TUNE_VQVAE_CACHE)."""
    return Path(DEFAULT_CACHE).expanduser() / "searches"


class Layout:
    """Where a search's files go.

    A directory (local, NFS, EFS): everything in `<storage>/<name>/`. A URI (s3://...): the
    Tune experiments go to `<storage>/<name>/` (Tune's storage_path, read and written by
    every node); the search-level files (search.json, the Optuna journal, results.csv/json)
    live in `local` = $TUNE_VQVAE_CACHE/searches/<name> on the driver, because Optuna's
    journal appends to and locks a POSIX file, which object storage cannot do. Copies go
    next to the experiments: search.json when the search starts, the journal before each
    experiment snapshot (`JournalUpload`), all of them when it ends. `--resume` on a machine
    without `local` (a new head node) fetches them back first (`fetch`)."""

    def __init__(self, storage_path: str, name: str):
        self.name, self.storage_path = name, storage_path
        self.created: list[Path] = []  # directories check_writable made
        if is_uri(storage_path):
            self.storage = uri_join(storage_path, name)  # Tune's storage_path of the experiments
            self.local = local_searches_dir() / name
        else:
            self.storage = str(Path(storage_path).expanduser().resolve() / name)
            self.local = Path(self.storage)

    @classmethod
    def of(cls, directory: str) -> Layout:
        """The layout of an existing search directory (--resume DIR): a path or a URI."""
        if is_uri(directory):
            parent, name = uri_split(directory)
            return cls(parent, name)
        d = Path(directory).expanduser().resolve()
        return cls(str(d.parent), d.name)

    @property
    def remote(self) -> bool:
        return is_uri(self.storage)

    def experiment(self, exp: str) -> str:
        return uri_join(self.storage, exp) if self.remote else f"{self.storage}/{exp}"

    def settings_json(self, cfg: SearchConfig, spaces: dict | None = None) -> str:
        """search.json: the settings (the resolved objective among them), each loss's weight
        bounds (`SearchSpace.bounds`, which the report reads), and where this driver keeps the
        search-level files (the experiments' searcher state refers to the journal by that path)."""
        bounds = {loss: list(s.bounds()) for loss, s in (spaces or {}).items()}
        return json.dumps({**dataclasses.asdict(cfg), "bounds": bounds, "driver_files": str(self.local)},
                          indent=1)

    def check_writable(self) -> None:
        """Creates `local` (`created`: the directories that were new, for a failed search to
        remove) after refusing a read-only or full file system."""
        existing = next(p for p in (self.local, *self.local.parents) if p.exists())
        if os.statvfs(existing).f_flag & os.ST_RDONLY:  # read-only, however much is free
            raise UserError(f"storage path {str(self.local)!r} is on a read-only file system; "
                            f"choose a writable --storage-path")
        free = shutil.disk_usage(existing).free  # before creating anything there
        if free < MIN_FREE_BYTES:
            raise UserError(f"storage path {str(self.local)!r} is full ({free >> 20} MiB free, "
                            f"a search needs at least {MIN_FREE_BYTES >> 20} MiB); free space "
                            f"or choose another --storage-path")
        self.created = missing_dirs(self.local)
        ensure_writable_dir(self.local, "storage path")
        if self.remote:
            try:
                fs, path = self._bucket()
                fs.create_dir(path)
                with fs.open_output_stream(f"{path}/.write-test"):
                    pass
                fs.delete_file(f"{path}/.write-test")
            except Exception as e:  # pyarrow raises OSError/ArrowInvalid/... per backend
                raise UserError(f"storage path {self.storage!r} is not writable ({e}); "
                                f"check the URI and credentials") from None

    def _bucket(self):
        return _filesystem(self.storage)

    def upload(self, files: list[str]) -> None:
        """Copy the search-level `files` from `local` next to the experiments (URI storage)."""
        if not self.remote:
            return
        fs, path = self._bucket()
        for f in files:
            if (self.local / f).exists():
                with _upload_lock:  # one PUT per file: never half a file in the bucket
                    data = (self.local / f).read_bytes()
                    if f == JOURNAL_FILE:  # whole lines: the next append must follow a complete one
                        data = data[:data.rfind(b"\n") + 1]
                    with fs.open_output_stream(f"{path}/{f}") as out:
                        out.write(data)

    def fetch(self) -> None:
        """--resume of a URI search on a machine without its search-level files (a new head
        node): copy them from the bucket into `local`, search.json last (it marks a whole
        copy). Nothing if the bucket has no search.json (the caller says so)."""
        fs, path = self._bucket()
        try:
            with fs.open_input_stream(f"{path}/{SETTINGS_FILE}") as f:
                settings = f.read()
        except FileNotFoundError:
            return
        except Exception as e:  # unreachable endpoint, credentials, ...
            raise UserError(f"--resume: cannot read {self.storage.partition('?')[0]} ({e}); "
                            f"check the URI, its endpoint options and credentials") from None
        try:
            driver = json.loads(settings).get("driver_files")
        except (json.JSONDecodeError, AttributeError):
            raise UserError(f"--resume: {SETTINGS_FILE} in {self.storage.partition('?')[0]} is damaged; "
                            f"copy an intact one there (the search's first driver has it in "
                            f"$TUNE_VQVAE_CACHE/searches/{self.name})") from None
        if driver and Path(driver) != self.local:
            cache = Path(driver).parent.parent
            raise UserError(f"--resume: this search's experiments refer to its Optuna journal as "
                            f"{driver}/{JOURNAL_FILE}; resume with TUNE_VQVAE_CACHE={cache} (a "
                            f"directory you can create here), not {self.local.parent.parent}")
        ensure_writable_dir(self.local, "storage path")
        for f in (JOURNAL_FILE, RESULTS_CSV, RESULTS_JSON):
            try:
                with fs.open_input_stream(f"{path}/{f}") as src:
                    atomic_write_bytes(self.local / f, src.read())
            except FileNotFoundError:  # results: written at the end only
                continue
        atomic_write_bytes(self.local / SETTINGS_FILE, settings)


_upload_lock = threading.Lock()  # experiments upload the one journal from their own threads


@functools.lru_cache(maxsize=8)
def _filesystem(storage: str):
    """(filesystem, path) of a storage URI, made once: the journal goes up at every snapshot."""
    import pyarrow.fs

    return pyarrow.fs.FileSystem.from_uri(storage)


class JournalUpload(tune.Callback):
    """URI storage: the Optuna journal goes next to the experiments before each snapshot of
    an experiment (Tune collects the callbacks' state, then uploads the snapshot), so the
    bucket's journal holds every trial a snapshot's searcher state names, and a new head
    node can resume. It changes at every reported epoch: one PUT of it per snapshot, about
    what Tune's own snapshot costs. Holds plain values: Tune pickles it with the experiment."""

    warned = False  # one warning per process for failed uploads

    def __init__(self, storage_path: str, name: str):
        self.storage_path, self.name = storage_path, name

    def get_state(self):
        try:
            Layout(self.storage_path, self.name).upload([JOURNAL_FILE])
        except Exception as e:  # a network blip must not end the search: the next snapshot retries
            if not JournalUpload.warned:
                JournalUpload.warned = True
                say(f"warning: uploading the Optuna journal failed ({str(e).splitlines()[0]}); the search "
                    f"goes on and retries at the next snapshot (only --resume on a new head node needs it)")
        return None  # no state of its own to save


def trial_dirname(trial) -> str:
    c = trial.config
    w = joint_weights(c) or c.get("w")  # a joint loss: its (w1, w2)
    return f"{trial.trial_id}_{dir_tag(c.get('role'), c.get('with_mse', True), w)}"


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

    def search(self, loss: str, space: SearchSpace, journal) -> Callable:
        """The Optuna search of one loss: its own study in the journal, ASHA unless a grid."""
        cfg = self.cfg

        def build():
            searcher = WeightSearch(
                space=WeightSpace(space), metric="objective", mode="min",
                points_to_evaluate=[dict(p) for p in space.points],
                sampler=WeightSampler(seed=cfg.seed), study_name=loss, storage=journal,
                epochs=cfg.epochs, replicates=cfg.replicates, run_seed=cfg.seed,
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
        """--seeds N: jobs re-running the MSE baseline and each loss's best config with the
        seeds cfg.seed+1 .. cfg.seed+N (a grid over train.seed), each an experiment of its
        own (baseline-seeds/, <loss>-seeds/) in the search directory, resumable like the others."""
        cfg = self.cfg
        seeds = [cfg.seed + k for k in range(1, cfg.seeds + 1)]
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

