"""Figures of the report, each returned as PNG bytes (Agg backend, no display needed)."""

from __future__ import annotations

import io
import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from tune_vqvae.vocab import paper_weights, point_name

from .load import DIVERGED, FAILED, STOPPED
from .tables import Analysis, best_group

DPI = 110


def _finish(fig, ax, xlabel: str, ylabel: str, title: str, legend_size: float = 8,
            minor_grid: bool = True) -> bytes:
    """Labels, grid, the legend outside on the right; the figure as PNG bytes."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both" if minor_grid else "major", alpha=0.25)
    ax.legend(fontsize=legend_size, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _ylabel(a: Analysis) -> str:
    arrow = "higher is better" if a.higher_is_better else "lower is better"
    return f"{a.objective.upper() if a.objective in ('fid', 'swd') else a.objective} ({arrow})"


def _hline(ax, mean, std, color, style, label):
    ax.axhline(mean, color=color, ls=style, lw=1.5, label=label)
    if std is not None and not math.isnan(std):
        ax.axhspan(mean - std, mean + std, color=color, alpha=0.12, lw=0)


def _log_x(ax) -> None:
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_formatter(NullFormatter())


def _outliers(ax, t) -> None:
    """Stopped trials (hollow; drawn at the top edge, as a triangle, when off the scale of
    the completed ones) and failed/diverged ones (red x on the bottom edge)."""
    stopped = t[(t["state"] == STOPPED) & t["with_mse"] & t["value"].notna()]
    if not ax.has_data() and len(stopped):  # nothing completed yet: scale to the stopped
        ax.scatter(stopped["w"], stopped["value"], s=0)
    low, high = ax.get_ylim()
    if len(stopped):
        inside = stopped[stopped["value"] <= high]
        above = stopped[stopped["value"] > high]
        if len(inside):
            ax.scatter(inside["w"], inside["value"], marker="o", facecolors="none",
                       edgecolors="0.45", s=36, label="stopped early (value at its last epoch)")
        if len(above):
            ax.scatter(above["w"], [high] * len(above), marker="^", facecolors="none",
                       edgecolors="0.45", s=46, clip_on=False,
                       label="stopped early, off the scale")
    bad = t[t["state"].isin([FAILED, DIVERGED]) & t["with_mse"] & t["w"].notna()]
    if len(bad):
        ax.scatter(bad["w"], [low] * len(bad), marker="x", color="C3", s=60, zorder=4,
                   label="failed / diverged", clip_on=False)
    ax.set_ylim(low, high)


def weight_plot(a: Analysis, loss: str) -> bytes:
    """Objective vs w (log) for one loss: every trial, seeds as mean ± std, the paper grid
    ringed, stopped/failed trials marked, no-MSE and the MSE baseline as lines."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    t = a.trials[a.trials["loss"] == loss]
    g = a.groups[(a.groups["loss"] == loss) & a.groups["with_mse"]].sort_values("w")
    if len(g):
        ax.plot(g["w"], g["mean"], "-", color="C0", alpha=0.35, lw=1)
        ax.errorbar(g["w"], g["mean"], yerr=g["std"].fillna(0) if a.seeded else None,
                    fmt="o", color="C0", ms=6, capsize=3,
                    label=f"mse + w·{loss} (completed{', mean ± std over seeds' if a.seeded else ''})")
        grid = g[g["paper_grid"]]
        if len(grid):
            ax.scatter(grid["w"], grid["mean"], s=170, facecolors="none", edgecolors="k",
                       lw=1.6, label="paper's grid (w = 0.25, 0.5, 1)", zorder=3)
    nomse = a.groups[(a.groups["loss"] == loss) & ~a.groups["with_mse"]]
    if len(nomse):
        r = nomse.iloc[0]
        _hline(ax, r["mean"], r["std"], "C2", ":", f"{loss} alone, no MSE ({r['mean']:.4g})")
    elif ((t["state"].isin([FAILED, DIVERGED])) & ~t["with_mse"]).any():
        ax.plot([], [], "x", color="C3", label=f"{loss} alone (no MSE): failed/diverged")
    base = a.baselines.get(loss)
    if base is not None:
        _hline(ax, base["mean"], base["std"], "C1", "--", f"MSE baseline ({base['mean']:.4g})")
    _outliers(ax, t)
    best = best_group(a, loss)
    if best is not None:
        ratio = f", {best['mean'] / base['mean']:.2f}× MSE" if base is not None else ""
        text = f"best {point_name(best['with_mse'], best['w'])}\n{best['mean']:.4g}{ratio}"
        if best["with_mse"]:
            ax.scatter([best["w"]], [best["mean"]], marker="*", s=260, color="gold",
                       edgecolors="k", zorder=5)
            ax.annotate(text, (best["w"], best["mean"]), xytext=(0.5, 0.82),
                        textcoords="axes fraction", ha="center", fontsize=9,
                        arrowprops={"arrowstyle": "->", "color": "0.3"},
                        bbox={"boxstyle": "round", "fc": "lightyellow", "ec": "0.6"})
        else:
            ax.text(0.5, 0.9, text, transform=ax.transAxes, ha="center", fontsize=9,
                    bbox={"boxstyle": "round", "fc": "lightyellow", "ec": "0.6"})
    if t["with_mse"].any() and t.loc[t["with_mse"], "w"].notna().any():
        _log_x(ax)
    return _finish(fig, ax, "weight w in  mse + w · loss  (log scale)", _ylabel(a),
                   f"{loss}: {a.objective} vs weight", legend_size=7.5)


def combined_plot(a: Analysis) -> bytes:
    """All losses on one axis, each relative to its MSE baseline (1 = as good as MSE)."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    relative = all(a.baselines.get(loss) is not None for loss in a.losses)
    for i, loss in enumerate(a.losses):
        g = a.groups[(a.groups["loss"] == loss) & a.groups["with_mse"]].sort_values("w")
        if g.empty:
            continue
        scale = a.baselines[loss]["mean"] if relative else 1.0
        color = f"C{i % 10}"
        ax.errorbar(g["w"], g["mean"] / scale,
                    yerr=(g["std"].fillna(0) / scale) if a.seeded else None,
                    fmt="o-", color=color, ms=4, lw=1.2, capsize=2, label=loss)
        best = best_group(a, loss)
        if best is not None and best["with_mse"]:
            ax.scatter([best["w"]], [best["mean"] / scale], marker="*", s=160, color=color,
                       edgecolors="k", zorder=5)
        nomse = a.groups[(a.groups["loss"] == loss) & ~a.groups["with_mse"]]
        if len(nomse):
            ax.axhline(nomse["mean"].iloc[0] / scale, color=color, ls=":", lw=1)
    if relative:
        ax.axhline(1.0, color="k", ls="--", lw=1.3, label="MSE baseline")
    for w in paper_weights():
        ax.axvline(w, color="0.8", lw=0.8, zorder=0)
    _log_x(ax)
    return _finish(fig, ax, "weight w (log scale; grey lines: the paper's grid; dotted: no MSE)",
                   f"{a.objective} / MSE baseline" if relative else _ylabel(a),
                   f"All losses: {a.objective} vs weight ★ = best")


def pareto_plot(a: Analysis) -> bytes:
    """Objective vs PSNR of every completed trial; the non-dominated ones joined."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    p = a.pareto
    names = ["mse"] + a.losses
    for i, loss in enumerate(names):
        m = p[p["loss"] == loss]
        if m.empty:
            continue
        ax.scatter(m["val_psnr"], m["value"], s=28, color="k" if loss == "mse" else f"C{i - 1}",
                   marker="s" if loss == "mse" else "o", label=loss, alpha=0.8)
    front = p[p["pareto"]].sort_values("val_psnr")
    if len(front):
        ax.plot(front["val_psnr"], front["value"], "-", color="0.3", lw=1, zorder=0)
        ax.scatter(front["val_psnr"], front["value"], s=150, facecolors="none",
                   edgecolors="C3", lw=1.5, label="non-dominated (Pareto)")
        for _, r in front.iterrows():
            ax.annotate(r["label"], (r["val_psnr"], r["value"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
    return _finish(fig, ax, "held-out PSNR (dB, higher is better: distortion)",
                   _ylabel(a) + " (perception)", "Perception-distortion trade-off across trials",
                   minor_grid=False)


def reconstructions_plot(originals, rows: list[tuple[str, object]]) -> bytes:
    """Rows: the originals, then each model's reconstructions (tensors N,3,H,W in [0, 1])."""
    all_rows = [("original", originals)] + rows
    n = originals.shape[0]
    fig, axes = plt.subplots(len(all_rows), 1, figsize=(max(4, 1.1 * n), 1.25 * len(all_rows)))
    axes = np.atleast_1d(axes)
    for ax, (title, x) in zip(axes, all_rows):
        x = x.detach().float().cpu().clamp(0, 1).numpy()  # N,3,H,W
        strip = np.concatenate([np.pad(img.transpose(1, 2, 0), ((1, 1), (1, 1), (0, 0)),
                                       constant_values=1.0) for img in x], axis=1)
        ax.imshow(strip, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(title, rotation=0, ha="right", va="center", fontsize=8)
    fig.suptitle("Held-out images and their reconstructions", fontsize=10)
    fig.tight_layout()
    return _png(fig)
