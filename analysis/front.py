"""The report's section on a two-objective search (`--objective A --objective B`, issue 24):
the estimated perception-distortion front of each loss, its table and front.csv.

The front is the search's own answer (`tune_vqvae.stats.front`, recomputed from the trials as
`analysis.answer` does for the rest): both surrogates' posterior means along w drawn as one
curve in the plane of the two objectives, its non-dominated stretch bold with both 95% bands
as error bars at a few weights, every full-length search run faint, the MSE baseline's and
the confirmed candidates' means with their 95% intervals, and with --constraint the budget's
bound as a line and the constrained recommendation marked.

`section(report, analysis)` and `frames(analysis)` are the hooks `analysis.report` calls.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from tune_vqvae import constraints
from tune_vqvae.stats.front import front_runs, shown_points

from .document import Table
from .plots import _png

CSV = "front.csv"


def fronts(a) -> dict[str, dict]:
    """loss -> its fitted front (answer["front"]), for the losses that have one."""
    return {loss: ans["front"] for loss, ans in a.answer.get("losses", {}).items()
            if (ans.get("front") or {}).get("fitted")}


def _label(name: str, direction: str) -> str:
    return f"{name.upper() if name in ('fid', 'swd', 'kid') else name} ({direction})"


def _errorbar(ax, x: dict, y: dict, **style) -> None:
    """A point (x, y) with both 95% intervals as error bars."""
    ax.errorbar(x["estimate"], y["estimate"], xerr=[[x["estimate"] - x["low"]], [x["high"] - x["estimate"]]],
                yerr=[[y["estimate"] - y["low"]], [y["high"] - y["estimate"]]], capsize=3, **style)


def _budget(ax, front: dict, constrained: dict | None) -> str:
    """The budget's bound as a line (where it bounds one of the two objectives) and the
    constrained recommendation on the front's curve; what the caption says of them."""
    if not constrained or constrained.get("threshold") is None:
        return ""
    first, second = front["objectives"]
    metric = constraints.parse(constrained["constraint"]).metric
    said = f"; {constrained['constraint']}: its bound "
    line = dict(color="C3", ls="--", lw=1.2, label=f"budget {constrained['constraint']}")
    if metric in (first, second):  # the bound of the x axis' metric is a vertical line
        (ax.axvline if metric == second else ax.axhline)(constrained["threshold"], **line)
        said += "the dashed line"
    else:
        said += f"not drawn ({metric} is neither axis)"
    w = constrained.get("recommended_w")
    if w is not None:
        i = int(np.argmin(np.abs(np.asarray(front["log10_w"]) - np.log10(w))))
        c = front["curves"]
        ax.scatter(c[second]["mean"][i], c[first]["mean"][i], marker="*", s=260, color="C3", zorder=6,
                   edgecolors="k", label=f"best w within budget ({w:.3g})")
        said += f", the star the best w within it (w = {w:.3g})"
    return said


def front_plot(a, loss: str, front: dict, constrained: dict | None) -> tuple[bytes, str]:
    """The figure (PNG) and what its caption adds about the budget."""
    first, second = front["objectives"]
    curves, grid = front["curves"], np.asarray(front["log10_w"])
    fig, ax = plt.subplots(figsize=(7.5, 5))
    runs = front_runs(a.rows, loss, a.epochs, second)  # the runs the surrogates fitted
    ax.scatter([r[second] for r in runs], [r["value"] for r in runs], s=18, color="0.5", alpha=0.35,
               label=f"single runs ({len(runs)}, full-length)")
    low, high = (np.log10(w) for w in (min(r["w"] for r in runs), max(r["w"] for r in runs)))
    inside = (grid >= low - 1e-9) & (grid <= high + 1e-9)
    ax.plot(np.asarray(curves[second]["mean"])[inside], np.asarray(curves[first]["mean"])[inside], "-",
            color="0.6", lw=1, label="surrogate means along w (observed range)")
    p = front["points"]
    ax.plot([q[second]["estimate"] for q in p], [q[first]["estimate"] for q in p], "-", color="C0", lw=3,
            label=f"estimated front: w {front['w_range'][0]:.3g} to {front['w_range'][1]:.3g}")
    shown = shown_points(front)
    for q in shown:
        _errorbar(ax, q[second], q[first], fmt="o", color="C0", ms=4, lw=1)
    for q, dy in ((shown[0], 4), (shown[-1], -10)):  # the ends only: a short front's labels overlap
        ax.annotate(f"w={q['w']:.3g}", (q[second]["estimate"], q[first]["estimate"]), fontsize=7,
                    xytext=(5, dy), textcoords="offset points")
    base = front.get("baseline") or {}
    if base.get(first) and base.get(second):
        _errorbar(ax, base[second], base[first], fmt="s", color="k", ms=6, label="MSE baseline (mean, 95%)")
    for k, (cand, c) in enumerate((front.get("confirmed") or {}).items()):
        _errorbar(ax, c[second], c[first], fmt="D", color=f"C{k + 1}", ms=6,
                  label=f"{cand.replace('_', ' ')} w={c['w']:.3g} ({c[first]['n']} confirmation runs)")
    said = _budget(ax, front, constrained)
    ax.set_xlabel(_label(second, front["directions"][1]))
    ax.set_ylabel(_label(first, front["directions"][0]))
    ax.set_title(f"{loss}: estimated {first} vs {second} front over w")
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _png(fig), said


def _cell(b: dict | None) -> str:
    return "–" if b is None else f"{b['estimate']:.4g} [{b['low']:.4g}, {b['high']:.4g}]"


def front_table(loss: str, front: dict) -> Table:
    first, second = front["objectives"]
    rows = [[f"{q['w']:.3g}", _cell(q[first]), _cell(q[second]), "surrogate"] for q in shown_points(front)]
    base = front.get("baseline") or {}
    rows.append(["MSE", _cell(base.get(first)), _cell(base.get(second)), "baseline runs' mean"])
    rows += [[f"{c['w']:.3g}", _cell(c[first]), _cell(c[second]),
              f"{cand.replace('_', ' ')}: {c[first]['n']} confirmation runs' mean"]
             for cand, c in (front.get("confirmed") or {}).items()]
    return Table(f"{loss}: the front", ["w", f"{first} (95%)", f"{second} (95%)", "from"], rows,
                 caption=f"{len(front['points'])} non-dominated grid weights, w {front['w_range'][0]:.3g} "
                         f"to {front['w_range'][1]:.3g} (all of them in {CSV}); five shown")


def section(report, a) -> None:
    """Append the front's section (figure, table per loss) where the search had two objectives."""
    found = fronts(a)
    if not found:
        return
    report.h("Perception-distortion front")
    report.p("Two objectives were searched (each run reports both; the sampler proposed w by "
             "expected hypervolume improvement). The answer is the estimated front: one Gaussian-"
             "process surrogate per objective over log w, and the weights within the searched range "
             "whose posterior means no other weight beats on both objectives; not the non-dominated "
             "single runs, which are mostly the lucky ones.")
    for loss, front in found.items():
        constrained = a.answer["losses"][loss].get("constrained")
        png, said = front_plot(a, loss, front, constrained)
        report.figure(f"front_{loss}.png", png,
                      f"{loss}: the surrogates' posterior means along w (grey), the estimated front "
                      f"(blue) with both 95% bands as error bars at five weights, single runs faint, the "
                      f"MSE baseline's and the confirmed candidates' means with 95% t intervals{said}")
        report.table(front_table(loss, front))


def frames(a) -> dict[str, pd.DataFrame]:
    """{front.csv: every loss's front points} where the search had two objectives, else {}."""
    rows = []
    for loss, front in fronts(a).items():
        for q in front["points"]:
            row = {"loss": loss, "w": q["w"]}
            for name in front["objectives"]:
                row.update({f"{name}_{k}": q[name][k] for k in ("estimate", "low", "high")})
            rows.append(row)
    return {CSV: pd.DataFrame(rows)} if rows else {}
