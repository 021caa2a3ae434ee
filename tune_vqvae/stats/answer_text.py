"""The answer's console text: how the search prints one loss's answer (`format_loss`) and
one comparison (`describe_comparison`); the report says the same with `answer.verdict_text`
and `answer.pairing_text`."""

from __future__ import annotations

import math

from ..vocab import BEST_PAPER, CANDIDATES, point_name
from .answer import pairing_text, verdict_text
from .constrained import budget_text


def _g(v) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def _name(point: dict | None) -> str:
    return "-" if point is None else point_name(point["with_mse"], point.get("w"))


def describe_comparison(c: dict, who: str, reference: str) -> str:
    """'recommended w=0.3 vs MSE baseline: better (-4.4% [-7.4%, -1.4%]); a gain over 7.4% is
    ruled out at 95%; diff -3.1 [-5.2, -1.0], 3 vs 3 runs, unpaired' (against the baseline:
    `verdict_text`); between candidates 'better: diff ... (-4.4% [-7.4, -1.4]), ...'. Under a
    distortion budget, then '; budget val_psnr >= -0.2: within budget (-0.05 dB [-0.12, 0.02])'."""
    budget = f"; budget {budget_text(c['budget'])}" if c.get("budget") else ""
    return _described(c, who, reference) + budget


def _described(c: dict, who: str, reference: str) -> str:
    if c.get("verdict") is None:
        return f"{who} vs {reference}: no verdict ({c.get('note')})"
    if "min_effect" in c:
        return (f"{who} vs {reference}: {verdict_text(c)}; diff {_g(c['diff'])} [{_g(c['low'])}, "
                f"{_g(c['high'])}], {c['n_candidate']} vs {c['n_reference']} runs, {pairing_text(c)}")
    pct = (
        f" ({c['percent']:+.1f}% [{c['percent_low']:+.1f}, {c['percent_high']:+.1f}])"
        if c.get("percent") is not None
        else ""
    )
    return (
        f"{who} vs {reference}: {c['verdict']}: diff {_g(c['diff'])} [{_g(c['low'])}, {_g(c['high'])}]"
        f"{pct}, {c['n_candidate']} vs {c['n_reference']} runs, {pairing_text(c)}"
    )


def seeds_text(seeds: list[int] | None, runs: int | None = None) -> str:
    """Which training seeds a surrogate's band stands for: ", each at its own seed" (the
    search's way: a band over seeds), ", all at seed 0: that seed's curve" (searches before
    2026-12-01), ", at 3 seeds"; "" where the rows do not say."""
    if not seeds:
        return ""
    if len(seeds) == 1:
        return f", all at seed {seeds[0]}: that seed's curve"
    return ", each at its own seed" if len(seeds) == runs else f", at {len(seeds)} seeds"


def format_loss(loss: str, a: dict, objective: str) -> list[str]:
    s, named = a["surrogate"], a["candidates"]
    if s.get("fitted"):
        wi, oi = s["w_interval"], s["objective"]
        head = (
            f"{loss}: recommended w={_g(s['recommended_w'])} [{_g(wi['low'])}, {_g(wi['high'])}] "
            f"(surrogate of {s['n_observations']} full-length runs"
            f"{seeds_text(s.get('seeds'), s['n_observations'])}; "
            f"{objective} {_g(oi['estimate'])} [{_g(oi['low'])}, {_g(oi['high'])}])"
        )
    else:
        head = f"{loss}: no surrogate ({s.get('note')})"
    lines = [head]
    who = {
        c: f"{c.replace('_', ' ')} {_name(named.get(c))}" for c in CANDIDATES
    }
    for prefix, section in (("", "comparisons"), ("on test: ", "comparisons_test")):
        shown = []
        for key, c in a.get(section, {}).items():
            cand, _, ref = key.partition("_vs_")
            if c in shown or c.get("note", "").startswith("the recommended w is"):
                continue  # a candidate that coincides with another: the same runs, said once
            shown.append(c)
            ref_name = "MSE baseline" if ref == "baseline" else f"paper's best {_name(named.get(BEST_PAPER))}"
            lines.append("  " + prefix + describe_comparison(c, who[cand], ref_name))
    if not a["comparisons"]:
        lines.append("  no confirmation runs: no verdict (--confirm-seeds N re-runs the candidates)")
    if "constrained" in a:
        lines.append("  " + constrained_text(a["constrained"], objective))
    return lines


def constrained_text(c: dict, objective: str) -> str:
    """answer["constrained"] in one line: "within budget val_psnr >= -0.2 (val_psnr at most
    0.2 dB below the MSE baseline's mean, 24.8): recommended w=0.3 (P >= 0.99), swd 0.21
    [0.2, 0.22]", or the note."""
    head = f"within budget {c['constraint']} ({c['description']}"
    head += f", {_g(c['threshold'])})" if c.get("threshold") is not None else ")"
    if c.get("recommended_w") is None:
        return f"{head}: no recommendation: {c.get('note')}"
    o = c["objective"]
    return (f"{head}: recommended w={_g(c['recommended_w'])} (P >= {c['level']:.2f}, "
            f"{c['p_feasible_at_recommended']:.2f} there), {objective} {_g(o['estimate'])} "
            f"[{_g(o['low'])}, {_g(o['high'])}]; unconstrained w={_g(c['unconstrained_w'])}")
