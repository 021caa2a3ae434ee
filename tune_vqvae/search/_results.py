"""The results of a search: one row per trial, the best w per loss and its gains, the
console table, and results.csv / results.json (written atomically)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os

from .. import objectives, vocab
from ..errors import atomic_write_text
from ..stats import format_answer, noise
from ..vocab import (
    BASELINE,
    COMPLETED,
    CONFIRM,
    DIVERGED,
    ERROR,
    FAILED_STATUSES,
    JOURNAL_FILE,
    PAPER,
    RESULTS_CSV,
    RESULTS_JSON,
    ROW_ROLES,
    SEARCH,
    SEED,
    SETTINGS_FILE,
    STOPPED,
    TEST_METRICS,
    config_point,
    joint_weights,
    point_name,
    weight_params,
)
from . import _compat
from ._config import SearchConfig
from ._layout import Layout
from ._spaces import SearchSpace

ROW_METRICS = ("fid", "kid", "kid_std", "swd", "val_mse", "val_psnr", "val_ssim", "perplexity", "codes_used",
               "images_per_s", "step_ms", "recon_loss_ms", *TEST_METRICS)


def collect_rows(exp: str, grid, cfg: SearchConfig, space: SearchSpace | None, objective: str,
                 seeds: bool = False, confirm: bool = False):
    """One row per trial of experiment `exp` (results.csv). Besides the trial's settings,
    status and metrics, every row says `seed`, `epochs_trained` (= `epochs`), `stopped`
    (ASHA ended it before the last epoch), `replicate` (index of its seed among the runs of
    its w in the search) and, for the confirmation stage (role confirm), `candidate`, and in
    a sequential confirmation, `round`."""
    statuses, record = _compat.trial_statuses(grid), objectives.get(objective)
    replicates = replicate_of(grid)
    rows = []
    for r in grid:
        c, m = r.config or {}, r.metrics or {}
        trial_id = m.get("trial_id") or os.path.basename(str(r.path)).split("_")[0]
        epoch = int(m.get("epoch", 0) or 0)
        loss, with_mse, point = config_point(c)
        if c.get("role") == BASELINE:
            role = BASELINE
        else:
            role = PAPER if space is not None and space.is_point(with_mse, point) else SEARCH
        mode = vocab.mode(loss, with_mse)
        w = point if isinstance(point, float) else None
        if seeds:
            role = SEED
        if confirm and role != BASELINE:  # baseline-confirm's runs stay the baseline's
            role = CONFIRM
        status = statuses.get(trial_id, "TERMINATED")
        if r.error is not None or status == ERROR or m.get("failed"):
            status = ERROR
        elif m.get("diverged"):
            status = DIVERGED
        elif status == "TERMINATED":  # Ray's word: it ended, all epochs or stopped by ASHA
            status = COMPLETED if epoch >= cfg.epochs else STOPPED
        value = record.value_of(m) if m and not (m.get("diverged") or m.get("failed")) else float("nan")
        row = {"loss": loss if c else exp, "experiment": exp, "role": role,
               "mode": mode, "with_mse": with_mse,
               "w": w, "objective": objective, "value": value, "test_value": m.get(record.test_name),
               "status": status, "epochs": epoch,
               "trial_id": trial_id, "seed": (c.get("train") or {}).get("seed"),
               "epochs_trained": epoch, "stopped": status == STOPPED,
               "replicate": replicates.get(trial_id), "candidate": c.get("candidate"),
               "round": c.get("round")}  # the sequential confirmation's round (stats.race)
        if isinstance(point, tuple):  # a joint loss: its weights w1, w2 (w stays empty)
            row.update(weight_params(loss, point))
        row.update({k: m.get(k) for k in ROW_METRICS})
        row.update(noise.halves_of(m, objective))  # the noise budget's inputs (last evaluation)
        # every objective's metric (a --constraint may bound any of them: stats.constrained)
        row.update({k: m.get(k) for k in objectives.OBJECTIVES if k not in row})
        row["node_id"] = m.get("node_id")
        row["error"] = (str(r.error).strip().splitlines() or [""])[-1][:200] if r.error else \
            (m.get("error") if m.get("diverged") or m.get("failed") else None)
        row["path"] = str(r.path)
        rows.append(row)
    order = {role: i for i, role in enumerate(ROW_ROLES)}
    rows.sort(key=lambda r: (order[r["role"]], r["w"] is not None, r["w"] or 0, _weights(r) or (),
                             r["seed"] or 0))
    return rows


def replicate_of(grid) -> dict[str, int]:
    """Ray trial id -> replicate index: its seed's rank among the seeds of its config."""
    seeds: dict[tuple, list] = {}
    ids = []
    for r in grid:
        c = r.config or {}
        key = (c.get("role"), c.get("candidate"), *config_point(c))
        seed = (c.get("train") or {}).get("seed")
        trial_id = (r.metrics or {}).get("trial_id") or os.path.basename(str(r.path)).split("_")[0]
        seeds.setdefault(key, []).append(seed)
        ids.append((trial_id, key, seed))
    return {tid: sorted(s for s in seeds[key] if s is not None).index(seed) if seed is not None else 0
            for tid, key, seed in ids}


def _weights(row: dict) -> tuple | None:
    """A joint loss row's weights (w1, w2), else None."""
    return joint_weights(row)


def _ok(row) -> bool:
    return row["status"] == COMPLETED and row["value"] is not None and math.isfinite(row["value"])


def _gain(reference: float | None, best: float, objective: str) -> dict | None:
    """How much better `best` is than `reference`: positive = better (in the metric's sense)."""
    if reference is None:
        return None
    better = objectives.get(objective).minimised(reference - best)
    return {"reference": reference, "absolute": better,
            "percent": 100 * better / abs(reference) if reference else None}


def summarise(rows: list[dict], losses: list[str], objective: str) -> dict:
    pick = min if objectives.get(objective).lower_is_better else max
    base = [r for r in rows if r["role"] == BASELINE and _ok(r)]
    # the mean over the baseline's seeds (--baseline-seeds); one run in older searches
    baseline = sum(r["value"] for r in base) / len(base) if base else None
    tests = [r["test_value"] for r in base if r["test_value"] is not None]
    baseline_test = sum(tests) / len(tests) if tests else None
    out = {}
    for loss in losses:
        mine = [r for r in rows if r["experiment"] == loss and _ok(r)]
        if not mine:
            out[loss] = {"best": None, "note": "no completed trial"}
            continue
        best = pick(mine, key=lambda r: r["value"])
        paper = [r for r in mine if r["role"] == PAPER]
        best_paper = pick(paper, key=lambda r: r["value"]) if paper else None
        out[loss] = {
            "best": {"with_mse": best["with_mse"], "w": best["w"], "mode": best["mode"],
                     "value": best["value"], "test_value": best["test_value"],
                     "trial_id": best["trial_id"], "role": best["role"],
                     **({"weights": weight_params(loss, _weights(best))} if _weights(best) else {})},
            "baseline": baseline,
            "gain_vs_baseline": _gain(baseline, best["value"], objective),
            # With --holdout: the same comparison on the test split, which selection never saw.
            "baseline_test": baseline_test,
            "gain_vs_baseline_test": None if best["test_value"] is None else
            _gain(baseline_test, best["test_value"], objective),
            "best_paper_point": None if best_paper is None else
            {"with_mse": best_paper["with_mse"], "w": best_paper["w"], "value": best_paper["value"],
             **({"weights": weight_params(loss, _weights(best_paper))} if _weights(best_paper) else {})},
            "gain_vs_paper": None if best_paper is None else
            _gain(best_paper["value"], best["value"], objective),
            "trials": sum(r["experiment"] == loss for r in rows),
            "completed": len(mine),
            "stopped_early": sum(r["experiment"] == loss and r["status"] == STOPPED for r in rows),
            "failed": sum(r["experiment"] == loss and r["status"] in FAILED_STATUSES for r in rows),
        }
    return out


def _fmt(v, spec=".4g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def _point(p: dict) -> str:
    weights = tuple(p["weights"].values()) if p.get("weights") else None
    return point_name(p["with_mse"], weights or p["w"])


def _w_cell(r: dict) -> str:
    weights = _weights(r)
    return ",".join(f"{w:.3g}" for w in weights) if weights else _fmt(r["w"])


def _run_note(r: dict) -> str:
    """The table's last cell after the trial id: seed and candidate where they matter."""
    notes = []
    if r["role"] in (SEED, CONFIRM, BASELINE) or (r.get("replicate") or 0) > 0:
        notes.append(f"seed {r['seed']}")
    if r.get("candidate"):
        notes.append(str(r["candidate"]).replace("_", " "))
    return f" ({', '.join(notes)})" if notes else ""


def format_table(rows: list[dict], summary: dict, objective: str, answer: dict | None = None) -> str:
    """The trials, then per loss the best single observation (a value, no gain: one run
    says nothing about a gain under run-to-run noise), then the answer as estimates."""
    test = any(r.get("test_value") is not None for r in rows)
    test_head = f" {objectives.get(objective).test_name:>10}" if test else ""
    lines = [f"{'loss':<9} {'role':<8} {'mode':<16} {'w':>9} {objective:>10}{test_head} {'status':<9} "
             f"{'epochs':>6}  trial"]
    for r in rows:
        test_cell = f" {_fmt(r.get('test_value')):>10}" if test else ""
        lines.append(f"{r['loss']:<9} {r['role']:<8} {r['mode']:<16} {_w_cell(r):>9} "
                     f"{_fmt(r['value']):>10}{test_cell} {r['status']:<9} {r['epochs']:>6}  {r['trial_id']}"
                     + _run_note(r))
    lines.append("")
    for loss, s in summary.items():
        if s.get("best") is None:
            lines.append(f"{loss}: {s.get('note')}")
            continue
        b = s["best"]
        text = f"{loss}: best {_point(b)} observed ({b['mode']}, one run): {objective} {_fmt(b['value'])}"
        if b.get("test_value") is not None:
            text += f"; on test: {objectives.get(objective).test_name} {_fmt(b['test_value'])}"
        lines.append(text)
    if answer is not None:
        lines.append("")
        lines.append(format_answer(answer, objective))
    margin = (f"; equivalent: within +-{answer['min_effect']:g}% of the MSE baseline's mean (--min-effect)"
              if answer and answer.get("min_effect") else "")
    levels = ("repeated intervals at each candidate's last look (sequential confirmation)"
              if answer and answer.get("race") else "intervals 95%")
    lines.append(f"({objective}: {objectives.get(objective).direction}; "
                 f"{levels}, differences candidate - reference from fresh seeds{margin})")
    return "\n".join(lines)


def write_results(layout: Layout, cfg: SearchConfig, objective: str, rows, summary,
                  answer: dict | None = None) -> None:
    import pandas as pd

    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False)
    atomic_write_text(layout.local / RESULTS_CSV, buf.getvalue())
    lower = objectives.get(objective).lower_is_better
    doc = {"name": layout.name, "objective": objective, "lower_is_better": lower,
           "settings": dataclasses.asdict(cfg), "best": summary, "answer": answer, "trials": rows}
    atomic_write_text(layout.local / RESULTS_JSON, json.dumps(doc, indent=1, default=str))
    layout.upload([SETTINGS_FILE, RESULTS_CSV, RESULTS_JSON, JOURNAL_FILE])
