"""The results of a search: one row per trial, the best w per loss and its gains, the
console table, and results.csv / results.json (written atomically)."""

from __future__ import annotations

import dataclasses
import io
import json
import math
import os

from .. import vocab
from ..errors import atomic_write_text
from ..vocab import (
    BASELINE,
    JOURNAL_FILE,
    PAPER,
    RESULTS_CSV,
    RESULTS_JSON,
    ROW_ROLES,
    SEARCH,
    SEED,
    SETTINGS_FILE,
    TEST_METRICS,
    higher_is_better,
    metric_of,
    point_name,
    test_metric,
)
from . import _compat
from ._config import SearchConfig
from ._experiments import Layout
from ._spaces import SearchSpace

ROW_METRICS = ("fid", "swd", "val_mse", "val_psnr", "val_ssim", "perplexity", "codes_used",
               "images_per_s", "step_ms", "recon_loss_ms", *TEST_METRICS)


def collect_rows(exp: str, grid, cfg: SearchConfig, space: SearchSpace | None, objective: str,
                 seeds: bool = False):
    statuses = _compat.trial_statuses(grid)
    rows = []
    for r in grid:
        c, m = r.config or {}, r.metrics or {}
        trial_id = m.get("trial_id") or os.path.basename(str(r.path)).split("_")[0]
        epoch = int(m.get("epoch", 0) or 0)
        if c.get("role") == BASELINE:
            role, mode, w = BASELINE, vocab.mode("mse", True), None
        else:
            with_mse, w = c.get("with_mse", True), c.get("w")
            role = PAPER if space is not None and space.is_point(with_mse, w) else SEARCH
            mode = vocab.mode(c.get("loss", exp), with_mse)
            w = w if with_mse else None
        if seeds:
            role = SEED
        status = statuses.get(trial_id, "TERMINATED")
        if r.error is not None or status == "ERROR":
            status = "ERROR"
        elif m.get("diverged"):
            status = "DIVERGED"
        elif status == "TERMINATED":
            status = "COMPLETED" if epoch >= cfg.epochs else "STOPPED"
        value = metric_of(m, objective) if m and not m.get("diverged") else float("nan")
        row = {"loss": c.get("loss", exp) if c.get("role") != BASELINE else "mse",
               "experiment": exp, "role": role,
               "mode": mode, "with_mse": c.get("with_mse", True) if role != BASELINE else True,
               "w": w, "objective": objective, "value": value, "test_value": m.get(test_metric(objective)),
               "status": status, "epochs": epoch,
               "trial_id": trial_id, "seed": (c.get("train") or {}).get("seed")}
        row.update({k: m.get(k) for k in ROW_METRICS})
        row["node_id"] = m.get("node_id")
        row["error"] = (str(r.error).strip().splitlines() or [""])[-1][:200] if r.error else \
            (m.get("error") if m.get("diverged") else None)
        row["path"] = str(r.path)
        rows.append(row)
    order = {role: i for i, role in enumerate(ROW_ROLES)}
    rows.sort(key=lambda r: (order[r["role"]], r["w"] is not None, r["w"] or 0, r["seed"] or 0))
    return rows


def _ok(row) -> bool:
    return row["status"] == "COMPLETED" and row["value"] is not None and math.isfinite(row["value"])


def _gain(reference: float | None, best: float, objective: str) -> dict | None:
    """How much better `best` is than `reference`: positive = better (in the metric's sense)."""
    if reference is None:
        return None
    better = (best - reference) if higher_is_better(objective) else (reference - best)
    return {"reference": reference, "absolute": better,
            "percent": 100 * better / abs(reference) if reference else None}


def summarise(rows: list[dict], losses: list[str], objective: str) -> dict:
    pick = max if higher_is_better(objective) else min
    base = [r for r in rows if r["role"] == BASELINE and _ok(r)]
    baseline = base[0]["value"] if base else None
    baseline_test = base[0]["test_value"] if base else None
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
                     "trial_id": best["trial_id"], "role": best["role"]},
            "baseline": baseline,
            "gain_vs_baseline": _gain(baseline, best["value"], objective),
            # With --holdout: the same comparison on the test split, which selection never saw.
            "baseline_test": baseline_test,
            "gain_vs_baseline_test": None if best["test_value"] is None else
            _gain(baseline_test, best["test_value"], objective),
            "best_paper_point": None if best_paper is None else
            {"with_mse": best_paper["with_mse"], "w": best_paper["w"], "value": best_paper["value"]},
            "gain_vs_paper": None if best_paper is None else
            _gain(best_paper["value"], best["value"], objective),
            "trials": sum(r["experiment"] == loss for r in rows),
            "completed": len(mine),
            "stopped_early": sum(r["experiment"] == loss and r["status"] == "STOPPED" for r in rows),
            "failed": sum(r["experiment"] == loss and r["status"] in ("ERROR", "DIVERGED") for r in rows),
        }
    return out


def _fmt(v, spec=".4g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return format(v, spec)


def _point(p: dict) -> str:
    return point_name(p["with_mse"], p["w"])


def _vs(gain: dict | None, name: str) -> str:
    if not gain:
        return ""
    text = f"; vs {name} {_fmt(gain['reference'])}: {_fmt(gain['absolute'], '+.4g')}"
    return text + (f" ({gain['percent']:+.1f}%)" if gain["percent"] is not None else "")


def format_table(rows: list[dict], summary: dict, objective: str) -> str:
    test = any(r.get("test_value") is not None for r in rows)
    test_head = f" {test_metric(objective):>10}" if test else ""
    lines = [f"{'loss':<9} {'role':<8} {'mode':<16} {'w':>9} {objective:>10}{test_head} {'status':<9} "
             f"{'epochs':>6}  trial"]
    for r in rows:
        test_cell = f" {_fmt(r.get('test_value')):>10}" if test else ""
        lines.append(f"{r['loss']:<9} {r['role']:<8} {r['mode']:<16} {_fmt(r['w']):>9} "
                     f"{_fmt(r['value']):>10}{test_cell} {r['status']:<9} {r['epochs']:>6}  {r['trial_id']}"
                     + (f" (seed {r['seed']})" if r["role"] == SEED else ""))
    lines.append("")
    for loss, s in summary.items():
        if s.get("best") is None:
            lines.append(f"{loss}: {s.get('note')}")
            continue
        b = s["best"]
        text = f"{loss}: best {_point(b)} ({b['mode']}): {objective} {_fmt(b['value'])}"
        text += _vs(s["gain_vs_baseline"], "MSE baseline")
        if s["best_paper_point"]:
            text += _vs(s["gain_vs_paper"], f"paper's best {_point(s['best_paper_point'])}")
        if b.get("test_value") is not None:
            text += f"; on test: {test_metric(objective)} {_fmt(b['test_value'])}"
            text += _vs(s.get("gain_vs_baseline_test"), "MSE baseline")
        lines.append(text)
    lines.append(f"({objective}: {'higher' if higher_is_better(objective) else 'lower'} is better)")
    return "\n".join(lines)


def write_results(layout: Layout, cfg: SearchConfig, objective: str, rows, summary) -> None:
    import pandas as pd

    buf = io.StringIO()
    pd.DataFrame(rows).to_csv(buf, index=False)
    atomic_write_text(layout.local / RESULTS_CSV, buf.getvalue())
    doc = {"name": layout.name, "objective": objective, "lower_is_better": not higher_is_better(objective),
           "settings": dataclasses.asdict(cfg), "best": summary, "trials": rows}
    atomic_write_text(layout.local / RESULTS_JSON, json.dumps(doc, indent=1, default=str))
    layout.upload([SETTINGS_FILE, RESULTS_CSV, RESULTS_JSON, JOURNAL_FILE])
