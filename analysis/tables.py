"""The numbers of the report: per-config seed statistics, best w per loss, the paper's grid
against the searched optimum, failures, compute overhead and the Pareto front."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from tune_vqvae import objectives
from tune_vqvae.stats.answer import compare
from tune_vqvae.stats.intervals import Noise
from tune_vqvae.stats.noise import HALF_KEYS, halves_of
from tune_vqvae.vocab import is_joint, paper_weights, point_name

from . import answer
from .load import COMPLETED, DAMAGED, DIVERGED, FAILED, STOPPED, warnings_of

GRID_POINTS = [(True, w) for w in paper_weights()] + [(False, math.nan)]  # the paper's, per loss


@dataclass
class Analysis:
    trials: pd.DataFrame  # every trial, `value` = the objective at its last report
    objective: str
    losses: list[str]
    groups: pd.DataFrame  # completed trials per config (seeds pooled): mean, std, n
    baselines: dict[str, pd.Series] = field(default_factory=dict)  # loss -> baseline group
    summary: pd.DataFrame | None = None
    grid: pd.DataFrame | None = None
    overhead: pd.DataFrame | None = None
    failures: pd.DataFrame | None = None
    pareto: pd.DataFrame | None = None
    notes: list[str] = field(default_factory=list)
    # The answer as estimates (analysis.answer): per loss the surrogate curve and the verdict
    # rows; the baseline's runs and their noise; the search's replicates per config.
    curves: dict[str, answer.Curve] = field(default_factory=dict)
    comparisons: list[answer.Comparison] = field(default_factory=list)
    baseline_values: dict[str, np.ndarray] = field(default_factory=dict)
    noise: Noise | None = None
    replicates: int = 0
    # The search's own answer recomputed (tune_vqvae.stats on the trials as results rows):
    # results.json's "answer", the surrogates' fits, the rows and epochs it rests on.
    answer: dict = field(default_factory=dict)
    fits: dict = field(default_factory=dict)
    rows: list[dict] = field(default_factory=list)
    epochs: int = 0
    # Joint losses (ssim+gmsd: mse + w1*ssim + w2*gmsd): not in `losses` (whose tables and
    # figures are over one w); analysis.joint reports them.
    joint_losses: list[str] = field(default_factory=list)

    @property
    def record(self) -> objectives.Objective:
        """The objective's record: direction, unit, text, test split."""
        return objectives.get(self.objective)

    @property
    def lower_is_better(self) -> bool:
        return self.record.lower_is_better

    def better(self, a: float, b: float) -> bool:
        return a < b if self.lower_is_better else a > b

    def best_index(self, values: pd.Series):
        return values.idxmin() if self.lower_is_better else values.idxmax()

    def best_of(self, values: pd.Series) -> float:
        return values.min() if self.lower_is_better else values.max()

    @property
    def seeded(self) -> bool:
        return bool((self.groups["n"] > 1).any()) if len(self.groups) else False


def _w_key(w: float) -> str:
    return "" if w is None or (isinstance(w, float) and math.isnan(w)) else f"{w:.6g}"


def _std(s: pd.Series) -> float:
    return float(s.std(ddof=1)) if s.count() > 1 else math.nan


def _groups(df: pd.DataFrame) -> pd.DataFrame:
    ok = df[(df["state"] == COMPLETED) & df["value"].notna()].copy()
    if ok.empty:
        return pd.DataFrame(columns=["loss", "with_mse", "w", "label", "n", "mean", "std",
                                     "test", "test_std",
                                     "psnr", "psnr_std", "ssim", "ssim_std", "paper_grid",
                                     "step_ms", "best_trial"])
    ok["w_key"] = ok["w"].map(_w_key)
    if "w1" in ok:  # a joint loss's configs: one per (w1, w2)
        joint = ok["w1"].notna()
        ok.loc[joint, "w_key"] = [",".join(_w_key(float(v)) for v in r)
                                  for r in ok.loc[joint, ["w1", "w2"]].to_numpy()]
    rows = []
    for (loss, with_mse, _), g in ok.groupby(["loss", "with_mse", "w_key"], sort=False):
        rows.append({
            "loss": loss, "with_mse": bool(with_mse), "w": g["w"].iloc[0], "label": g["label"].iloc[0],
            "n": len(g), "mean": g["value"].mean(), "std": _std(g["value"]),
            "test": g["test_value"].mean(), "test_std": _std(g["test_value"]),
            "psnr": g["val_psnr"].mean(), "psnr_std": _std(g["val_psnr"]),
            "ssim": g["val_ssim"].mean(), "ssim_std": _std(g["val_ssim"]),
            "paper_grid": bool(g["paper_grid"].iloc[0]), "step_ms": g["step_ms"].mean(),
            "seeds": ", ".join(f"{s:g}" for s in sorted(g["seed"].dropna().unique())),
            "trials": list(g.index),
        })
    return pd.DataFrame(rows)


def _search_dir(path: str) -> Path:
    """The search a trial belongs to: <search>/<experiment>/<trial>."""
    return Path(path).parent.parent


def analyse(df: pd.DataFrame, objective: str) -> Analysis:
    df = df.copy()
    df["value"] = pd.to_numeric(df[objective], errors="coerce")
    # With --holdout the value above is on held-out training images, this on test images.
    test_column = objectives.get(objective).test_name
    df["test_value"] = pd.to_numeric(df[test_column], errors="coerce") if test_column in df else math.nan
    halves = [halves_of(r, objective) for r in df.to_dict("records")]  # the noise budget's inputs
    df[list(HALF_KEYS)] = pd.DataFrame(halves, index=df.index, columns=list(HALF_KEYS), dtype=float)
    df["search"] = df["path"].map(lambda p: str(_search_dir(p)))
    order = list(dict.fromkeys(df.loc[df["loss"] != "mse", "loss"]))
    a = Analysis(trials=df, objective=objective, losses=[x for x in order if not is_joint(x)],
                 groups=_groups(df), joint_losses=[x for x in order if is_joint(x)])
    a.notes.extend(warnings_of(df))
    _baselines(a)
    a.summary = _summary(a)
    a.grid = _grid(a)
    a.failures = _failures(a)
    a.overhead = _overhead(a)
    a.pareto = _pareto(a)
    _answer(a)
    return a


def _answer(a: Analysis) -> None:
    """The search's answer (curves, verdicts, noise), and each loss's baseline values."""
    for loss in ["mse"] + a.losses + a.joint_losses:
        base = a.baselines.get(loss)
        a.baseline_values[loss] = a.trials.loc[base["trials"], "value"].to_numpy(float) \
            if base is not None else np.array([])
    a.replicates = answer.replicates_per_config(a.groups, a.trials)
    answer.analyse_answer(a)


def _baseline_group(a: Analysis, trials: pd.DataFrame) -> pd.Series | None:
    g = _groups(trials)
    g = g[g["loss"] == "mse"]
    return g.iloc[0] if len(g) else None


def _baselines(a: Analysis) -> None:
    """The MSE baseline of each loss: the baseline trials of the same search, else all."""
    df = a.trials
    base = df[df["loss"] == "mse"]
    if base.empty:
        a.notes.append("no MSE baseline trial found: ratios to the baseline are not available "
                       "(analyse the whole search directory, which holds baseline/)")
    everywhere = _baseline_group(a, base) if len(base) else None
    for loss in a.losses + a.joint_losses:
        searches = set(df.loc[df["loss"] == loss, "search"])
        same = base[base["search"].isin(searches)]
        g = _baseline_group(a, same) if len(same) else None
        if g is None and everywhere is not None:
            g = everywhere
            if len(same) == 0:
                a.notes.append(f"{loss}: no MSE baseline in the same search; using the baseline "
                               f"of the other experiments analysed")
        if g is not None:
            a.baselines[loss] = g
    if len(base) and everywhere is None:
        a.notes.append("the MSE baseline has not completed yet: ratios to it are missing")
    a.baselines["mse"] = everywhere


def best_group(a: Analysis, loss: str) -> pd.Series | None:
    g = a.groups[a.groups["loss"] == loss]
    if g.empty:
        return None
    return g.loc[a.best_index(g["mean"])]


def best_trial(a: Analysis, group: pd.Series) -> pd.Series:
    """The seed of a group with the best value (its checkpoint shows the reconstructions)."""
    t = a.trials.loc[group["trials"]]
    return t.loc[a.best_index(t["value"])]


def _counts(a: Analysis, loss: str) -> dict:
    t = a.trials[a.trials["loss"] == loss]
    return {"trials": len(t), "completed": int((t["state"] == COMPLETED).sum()),
                "stopped": int((t["state"] == STOPPED).sum()),
                "failed": int(t["state"].isin([FAILED, DIVERGED, DAMAGED]).sum())}


def _summary(a: Analysis) -> pd.DataFrame:
    rows = []
    base_all = a.baselines.get("mse")
    if base_all is not None:
        rows.append(dict(loss="mse (baseline)", best="-", w=math.nan, with_mse=True,
                         value=base_all["mean"], value_std=base_all["std"], n=base_all["n"],
                         vs_baseline=1.0, test=base_all["test"], test_std=base_all["test_std"],
                         test_vs_baseline=1.0 if pd.notna(base_all["test"]) else math.nan,
                         psnr=base_all["psnr"], psnr_std=base_all["psnr_std"],
                         ssim=base_all["ssim"], ssim_std=base_all["ssim_std"],
                         on_paper_grid=True, **_counts(a, "mse")))
    for loss in a.losses:
        g = best_group(a, loss)
        base = a.baselines.get(loss)
        row = dict(loss=loss, **_counts(a, loss))
        if g is None:
            rows.append({**row, "best": "no completed trial yet"})
            continue
        row.update(best=point_name(g["with_mse"], g["w"]), w=g["w"], with_mse=g["with_mse"],
                   value=g["mean"], value_std=g["std"], n=g["n"],
                   vs_baseline=g["mean"] / base["mean"] if base is not None else math.nan,
                   test=g["test"], test_std=g["test_std"],
                   test_vs_baseline=g["test"] / base["test"] if base is not None else math.nan,
                   psnr=g["psnr"], psnr_std=g["psnr_std"], ssim=g["ssim"],
                   ssim_std=g["ssim_std"], on_paper_grid=g["paper_grid"])
        rows.append(row)
    s = pd.DataFrame(rows)
    if "value" in s and s["value"].notna().any():
        best = a.best_of(s["value"])
        s["vs_lowest"] = s["value"] / best  # the paper's scaling: a multiple of the lowest
    cols = ["loss", "best", "w", "with_mse", "value", "value_std", "n", "vs_baseline",
            "vs_lowest", "test", "test_std", "test_vs_baseline", "psnr", "psnr_std", "ssim",
            "ssim_std", "on_paper_grid",
            "trials", "completed", "stopped", "failed"]
    return s.reindex(columns=cols)


def _grid(a: Analysis) -> pd.DataFrame:
    """Long table: per loss, each paper grid point and the searched optimum."""
    rows = []
    for loss in a.losses:
        g = a.groups[a.groups["loss"] == loss]
        base = a.baselines.get(loss)
        best = best_group(a, loss)
        grid_best = None
        for with_mse, w in GRID_POINTS:
            m = g[(g["with_mse"] == with_mse) & (
                g["w"].map(_w_key) == _w_key(w) if with_mse else True)]
            r = m.iloc[0] if len(m) else None
            if r is not None and (grid_best is None or a.better(r["mean"], grid_best["mean"])):
                grid_best = r
            rows.append(_grid_row(loss, point_name(with_mse, w), "paper grid", r, base))
        rows.append(_grid_row(loss, point_name(best["with_mse"], best["w"]) if best is not None
                              else "-", "searched optimum", best, base))
        if best is not None and grid_best is not None:
            rows[-1]["vs_best_grid"] = best["mean"] / grid_best["mean"]
            rows[-1]["best_grid_point"] = point_name(grid_best["with_mse"], grid_best["w"])
    return pd.DataFrame(rows)


def _grid_row(loss, point, kind, r, base) -> dict:
    row = {"loss": loss, "point": point, "kind": kind}
    if r is not None:
        row.update(value=r["mean"], value_std=r["std"], n=r["n"], psnr=r["psnr"],
                   ssim=r["ssim"],
                   vs_baseline=r["mean"] / base["mean"] if base is not None else math.nan)
    return row


def _failures(a: Analysis) -> pd.DataFrame:
    t = a.trials[a.trials["state"] != COMPLETED]
    cols = ["experiment", "trial_id", "label", "state", "epochs", "epochs_planned", "reason",
            "path"]
    return t.reindex(columns=cols).reset_index(drop=True)


def _overhead(a: Analysis) -> pd.DataFrame:
    """Step time per loss against the MSE baseline, the loss's own share, and the cost of
    the search against the paper's fixed grid (4 full runs per loss)."""
    t = a.trials
    # Step times without the first (warm-up) epoch: from trials that ran more than one epoch,
    # where there are some (a trial that failed in its second epoch has only the warm-up).
    warm = t["step_ms"].notna() & (t["epochs"] > 1)
    t = t[warm] if warm.any() else t[t["step_ms"].notna()]
    rows = []
    base_all = t[(t["loss"] == "mse")]
    for loss in ["mse"] + a.losses + a.joint_losses:
        mine = a.trials[a.trials["loss"] == loss]
        timed = t[t["loss"] == loss]
        searches = set(mine["search"])
        base = base_all[base_all["search"].isin(searches)]
        if base.empty:
            base = base_all
        step, base_step = timed["step_ms"].mean(), base["step_ms"].mean()
        recon = timed["recon_loss_ms"].mean()
        # the interval of the step-time difference, relative to the baseline's mean: the same
        # rule as every other comparison (tune_vqvae.stats.compare); NaN below 2 trials a side
        cost = compare(list(timed["step_ms"]), list(base["step_ms"]), lower_is_better=True)
        row = {"loss": loss, "step_ms": step, "step_ms_std": _std(timed["step_ms"]),
                   "baseline_step_ms": base_step,
                   "overhead_pct": 100 * (step / base_step - 1) if base_step else math.nan,
                   "overhead_low_pct": cost.get("percent_low", math.nan),
                   "overhead_high_pct": cost.get("percent_high", math.nan),
                   "recon_loss_ms": recon, "recon_share_pct": 100 * recon / step if step else math.nan,
                   "trials_timed": len(timed),
                   "search_trial_s": mine["time_total_s"].fillna(0).sum()}
        if loss != "mse" and not is_joint(loss):  # the paper's grid has no joint loss
            row.update(_grid_cost(a, mine))
        rows.append(row)
    return pd.DataFrame(rows)


def _grid_cost(a: Analysis, mine: pd.DataFrame) -> dict:
    """What the paper's 4 fixed runs of this loss cost (measured, or estimated from the
    loss's seconds per epoch where a grid point did not run to the end)."""
    ran = mine[mine["time_total_s"].notna() & (mine["epochs"] > 0)]
    if ran.empty:
        return {}
    per_epoch = (ran["time_total_s"] / ran["epochs"]).mean()
    full_epochs = ran["epochs_planned"].max()
    cost, measured = 0.0, 0
    for with_mse, w in GRID_POINTS:
        m = ran[(ran["with_mse"] == with_mse) & (
            ran["w"].map(_w_key) == _w_key(w) if with_mse else True)
            & (ran["state"] == COMPLETED)]
        if len(m):
            cost += m["time_total_s"].mean()
            measured += 1
        else:
            cost += per_epoch * full_epochs
    g = a.groups[a.groups["loss"] == mine["loss"].iloc[0]]
    grid_g = g[g["paper_grid"]]
    best_grid = a.best_of(grid_g["mean"]) \
        if len(grid_g) else math.nan
    best = a.best_of(g["mean"]) if len(g) else math.nan
    search_s = mine["time_total_s"].fillna(0).sum()
    return {"grid_trial_s": cost, "grid_points_measured": measured,
                "search_vs_grid": search_s / cost if cost else math.nan,
                "best_search": best, "best_grid": best_grid}


def _pareto(a: Analysis) -> pd.DataFrame:
    """Completed trials in (objective, PSNR); `pareto` marks the non-dominated ones."""
    t = a.trials[(a.trials["state"] == COMPLETED) & a.trials["value"].notna()
                 & a.trials["val_psnr"].notna()].copy()
    sign = a.record.minimised(1.0)
    obj = sign * t["value"].to_numpy()
    psnr = t["val_psnr"].to_numpy()
    dominated = np.zeros(len(t), dtype=bool)
    for i in range(len(t)):
        no_worse = (obj <= obj[i]) & (psnr >= psnr[i])
        strictly = (obj < obj[i]) | (psnr > psnr[i])
        dominated[i] = bool((no_worse & strictly).any())
    t["pareto"] = ~dominated
    return t.reindex(columns=["loss", "label", "trial_id", "seed", "value", "val_psnr",
                              "val_ssim", "step_ms", "pareto", "experiment"])
