"""Experiment trackers (--log-to mlflow, --log-to wandb) through Ray Tune's own callbacks.

Every trial's config and per-epoch results go through `MLflowLoggerCallback` /
`WandbLoggerCallback` (one per Tune experiment, all in one MLflow experiment / W&B group
named after the search); the search's answer goes once, at the end, as a run of its own
with results.json and results.csv attached (`log_answer`).
"""

from __future__ import annotations

import importlib
import os
import re
from pathlib import Path

from ..errors import UserError
from ..vocab import RESULTS_CSV, RESULTS_JSON

TRACKERS = ("mlflow", "wandb")  # --log-to NAME: the package of the same name
ANSWER_RUN = "answer"  # the name of the run holding the search's answer
WANDB_PROJECT = "tune_vqvae"  # unless WANDB_PROJECT is set
MLRUNS = "mlruns"  # the default MLflow store, beside the search directories


def check(log_to: list[str], mlflow_uri: str | None) -> None:
    """Unknown trackers, missing packages, W&B without a key: exit 2 before Ray starts."""
    for name in log_to:
        if name not in TRACKERS:
            raise UserError(f"unknown --log-to {name!r}; valid: {', '.join(TRACKERS)}")
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise UserError(f"--log-to {name} needs the {name} package ({e}); "
                            f"pip install 'tune_vqvae[trackers]'") from None
    if mlflow_uri and "mlflow" not in log_to:
        raise UserError("--mlflow-uri applies to MLflow: add --log-to mlflow")
    if "wandb" in log_to:
        from ._compat import wandb_api_key_found

        if not wandb_api_key_found():
            raise UserError("--log-to wandb: no W&B API key (WANDB_API_KEY, or `wandb login`); "
                            "or log offline with WANDB_MODE=offline and `wandb sync` the runs later")


def mlflow_uri(cfg, layout) -> str:
    """The tracking URI of a search (`SearchConfig`, `Layout`): --mlflow-uri or
    MLFLOW_TRACKING_URI as saved in search.json, else a file store `mlruns/` beside the search
    directories (where the search-level files are: the driver's disk), one MLflow experiment
    per search."""
    return cfg.mlflow_uri or (layout.local.parent / MLRUNS).as_uri()


def _allow_file_store(uri: str) -> None:
    # MLflow 3 refuses its file store (maintenance mode) unless opted in; the default
    # mlruns/ is one. The callbacks run in this process, so the driver's env is enough.
    if uri.startswith("file:") or "://" not in uri:
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")


def start(log_to: list[str], uri: str, search: str) -> None:
    """Once per search, before its experiments start in their threads: the MLflow experiment
    created here, so that two callbacks' setups never race to create it."""
    if "mlflow" not in log_to:
        return
    import mlflow

    _allow_file_store(uri)
    client = mlflow.MlflowClient(tracking_uri=uri)
    if client.get_experiment_by_name(search) is None:
        client.create_experiment(search)


def _wandb_settings() -> dict:
    # The logging actors run in Ray workers, whose environment is the cluster's, not this
    # shell's; Tune pins them to the driver's node, so the driver's WANDB_MODE/WANDB_DIR hold.
    env = {"mode": "WANDB_MODE", "dir": "WANDB_DIR"}
    return {k: os.environ[v] for k, v in env.items() if os.environ.get(v)}


def callbacks(log_to: list[str], uri: str, search: str, exp: str) -> list:
    """Tune callbacks of experiment `exp` of search `search`: one run per trial."""
    out = []
    if "mlflow" in log_to:
        from ray.air.integrations.mlflow import MLflowLoggerCallback

        _allow_file_store(uri)
        out.append(MLflowLoggerCallback(tracking_uri=uri, experiment_name=search,
                                        tags={"search": search, "tune_experiment": exp}))
    if "wandb" in log_to:
        from ray.air.integrations.wandb import WandbLoggerCallback

        out.append(WandbLoggerCallback(project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT),
                                       group=search, job_type=exp, **_wandb_settings()))
    return out


def where(log_to: list[str], uri: str) -> list[str]:
    """Console lines: where the tracker runs are."""
    lines = [f"mlflow ui --backend-store-uri {uri}"] if "mlflow" in log_to else []
    if "wandb" in log_to and os.environ.get("WANDB_MODE") == "offline":
        lines.append("W&B offline runs: wandb sync <WANDB_DIR or trial dir>/wandb/offline-run-* to upload")
    return lines


def answer_summary(answer: dict | None) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, verdicts) of results.json's answer: each loss's recommended weight(s) and
    each comparison's verdict, difference and percent (keys `<loss>.<comparison>.<what>`)."""
    metrics, verdicts = {}, {}
    for loss, a in ((answer or {}).get("losses") or {}).items():
        surrogate = a.get("surrogate") or {}
        if isinstance(surrogate.get("recommended_w"), (int, float)):
            metrics[f"{loss}.recommended_w"] = float(surrogate["recommended_w"])
        for k, v in (surrogate.get("recommended") or {}).items():  # a joint loss's w1, w2
            metrics[f"{loss}.recommended_{k}"] = float(v)
        for name, c in (a.get("comparisons") or {}).items():
            verdicts[f"{loss}.{name}"] = str(c.get("verdict"))
            for k in ("diff", "percent"):
                if isinstance(c.get(k), (int, float)):
                    metrics[f"{loss}.{name}.{k}"] = float(c[k])
    return metrics, verdicts


def log_answer(log_to: list[str], uri: str, search: str, settings: dict, answer: dict | None,
               directory: Path) -> None:
    """The search's answer, once, as a run of its own: settings as params, the recommended
    weights and differences as metrics, verdicts as tags, results.json/csv as files."""
    metrics, verdicts = answer_summary(answer)
    files = [directory / f for f in (RESULTS_JSON, RESULTS_CSV) if (directory / f).exists()]
    if "mlflow" in log_to:
        import mlflow

        _allow_file_store(uri)
        client = mlflow.MlflowClient(tracking_uri=uri)
        experiment = client.get_experiment_by_name(search).experiment_id
        run = client.create_run(experiment, run_name=ANSWER_RUN, tags={"search": search, **verdicts})
        rid = run.info.run_id
        for k, v in metrics.items():
            client.log_metric(rid, k, v)
        for k, v in settings.items():
            client.log_param(rid, k, v)
        for f in files:
            client.log_artifact(rid, str(f))
        client.set_terminated(rid)
    if "wandb" in log_to:
        import wandb

        run = wandb.init(project=os.environ.get("WANDB_PROJECT", WANDB_PROJECT), group=search,
                         job_type=ANSWER_RUN, name=f"{search}-{ANSWER_RUN}", config=settings,
                         **_wandb_settings())
        run.summary.update({**metrics, **verdicts})
        # an artifact's name: letters, digits, '-', '_', '.' (a joint loss's search has a '+')
        artifact = wandb.Artifact(re.sub(r"[^\w.-]", "_", f"{search}-{ANSWER_RUN}"), type="results")
        for f in files:
            artifact.add_file(str(f))
        run.log_artifact(artifact)
        run.finish()
