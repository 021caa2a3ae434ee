"""Assemble the report: its sections in order (`analysis.sections`, `analysis.joint`), CSV
tables, PNG figures, report.md and a self-contained report.html.

Every file goes through `tune_vqvae.errors.atomic_write_*`: a reader (or a crash) never
sees half a report.
"""

from __future__ import annotations

import io
import time
from pathlib import Path

import pandas as pd

from tune_vqvae.errors import atomic_write_bytes, atomic_write_text

from . import front, joint, plots
from .answer import comparisons_frame, curves_frame
from .document import Report
from .load import IN_PROGRESS
from .sections import (
    answer_lines,
    cost_sentence,
    failures_table,
    grid_table,
    noise_sentence,
    objective_text,
    overhead_table,
    pareto_table,
    reconstruction_selection,
    summary_table,
    verdict_table,
)
from .tables import Analysis


def build(a: Analysis, experiments: list[Path], out: Path, *, requested_objective: bool,
          images: int = 8, device: str = "auto", data_source: str | None = None,
          reconstructions: bool = True, stream=None) -> Report:
    r = Report("Perceptual-loss weight search: analysis report")
    t = a.trials
    states = t["state"].value_counts()
    r.p(f"Generated {time.strftime('%Y-%m-%d %H:%M:%S')} from {len(experiments)} experiment "
        f"director{'y' if len(experiments) == 1 else 'ies'}, {len(t)} trials ("
        + ", ".join(f"{n} {s}" for s, n in states.items()) + ").")
    r.ul(f"`{e}`" for e in experiments)
    r.p(objective_text(a, requested_objective))
    if t["state"].isin(IN_PROGRESS).any():
        r.p("**The search is still running**: "
            f"{int(t['state'].isin(IN_PROGRESS).sum())} trials are not finished; "
            "run the analysis again for the final numbers.")
    if a.seeded:
        r.p("Configurations run with several seeds show mean ± sd (n = runs) in the tables; "
            "the figures show every run.")
    if a.notes:
        r.ul(a.notes)

    r.h("Answer")
    r.p(noise_sentence(a))
    r.ul(answer_lines(a))
    r.table(verdict_table(a))

    r.h(f"{a.objective.upper()} versus weight")
    for loss in a.losses:
        r.figure(f"weight_{loss}.png", plots.weight_plot(a, loss),
                 f"{loss}: the surrogate's posterior mean of {a.objective} over log w with its 95% "
                 f"band (a Gaussian process fitted to the full-length runs only), every run "
                 f"(replicates side by side), runs stopped early as triangles on the bottom edge "
                 f"(not fitted), the MSE baseline's mean and 95% interval (stripe), the "
                 f"recommended w with the 95% intervals of w and of {a.objective} there")
    if any(c.fit is not None for c in a.curves.values()):
        r.figure("weight_all.png", plots.combined_plot(a),
                 f"every loss's surrogate of {a.objective} relative to the MSE baseline's mean")
    r.table(summary_table(a))
    r.table(grid_table(a))
    joint.section(r, a)  # joint losses (ssim+gmsd): the contour over (w1, w2), the pair's verdict
    front.section(r, a)  # two objectives (--objective twice): the estimated front of each loss

    r.h("Perception versus distortion")
    if len(a.pareto):
        r.figure("pareto.png", plots.pareto_plot(a),
                 f"{a.objective} vs PSNR of every completed trial; circled: non-dominated")
        r.table(pareto_table(a))
    else:
        r.p("No completed trial with PSNR yet.")

    r.h("Compute overhead")
    r.table(overhead_table(a))
    r.p(cost_sentence(a))

    r.h("Reconstructions")
    if reconstructions:
        picks, notes = reconstruction_selection(a)
        if picks:
            from .recon import reconstruct

            originals, rows, more = reconstruct(picks, images, device, data_source, stream)
            notes += more
            if rows:
                r.figure("reconstructions.png", plots.reconstructions_plot(originals, rows),
                         "rows: original, MSE baseline, each loss's best trial")
        if notes:
            r.ul(notes)
        if "reconstructions.png" not in r.figures:
            r.p("No reconstructions figure: no best trial had a readable Trainer checkpoint.")
    else:
        r.p("Skipped (--no-reconstructions).")

    r.h("Failed and stopped trials")
    r.table(failures_table(a))

    r.h("Files")
    r.ul([f"`{name}`" for name in (*CSV_FILES, *front.frames(a))] + [f"`{n}`" for n in r.figures])
    return r


CSV_FILES = ("summary.csv", "grid.csv", "overhead.csv", "failures.csv", "pareto.csv",
             "trials.csv", "verdicts.csv", "curves.csv")


def _csv(df: pd.DataFrame) -> str:
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    return buf.getvalue()


def write(a: Analysis, r: Report, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    trials = a.trials.drop(columns=["search"], errors="ignore")
    frames = dict(zip(CSV_FILES, (a.summary, a.grid, a.overhead, a.failures, a.pareto, trials,
                                  comparisons_frame(a.comparisons), curves_frame(a.curves))))
    frames.update(front.frames(a))  # front.csv: only where the search had two objectives
    for name, df in frames.items():
        atomic_write_text(out / name, _csv(df))
        written.append(out / name)
    for name, png in r.figures.items():
        atomic_write_bytes(out / name, png)
        written.append(out / name)
    atomic_write_text(out / "report.md", r.markdown())
    atomic_write_text(out / "report.html", r.html())
    written += [out / "report.md", out / "report.html"]
    return written
