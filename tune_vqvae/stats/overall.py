"""The answer of a whole search: the MSE baseline's replicates and every loss's answer (one
loss: `answer.loss_answer`, a pair: `joint.loss_answer`), and its console text. The search
writes it into results.json; the report recomputes it from the same rows."""

from __future__ import annotations

from ..vocab import is_joint
from . import joint
from .answer import baseline_summary, loss_answer
from .answer_text import _g, format_loss
from .equivalence import DEFAULT_MIN_EFFECT


def search_answer(rows: list[dict], losses: list[str], *, epochs: int, bounds: dict[str, tuple[float, float]],
           lower_is_better: bool, n_per_config: int, fits: dict | None = None,
           min_effect: float = DEFAULT_MIN_EFFECT) -> dict:
    """results.json's "answer": {"baseline": baseline_summary, "losses": {loss: its answer},
    "min_effect": the equivalence margin of the verdicts against the baseline (--min-effect)};
    the surrogates' fits go into `fits` (loss -> SurrogateFit / SurfaceFit) when given."""
    return {
        "baseline": baseline_summary(rows, epochs, n_per_config),
        "losses": {
            loss: (joint.loss_answer if is_joint(loss) else loss_answer)(
                rows, loss, epochs=epochs, bounds=bounds[loss], lower_is_better=lower_is_better, fits=fits,
                min_effect=min_effect)
            for loss in losses
        },
        "min_effect": min_effect,
    }


def format_answer(ans: dict, objective: str) -> str:
    lines = []
    for loss, a in ans["losses"].items():
        lines.extend((joint.format_loss if a.get("joint") else format_loss)(loss, a, objective))
    b = ans["baseline"]
    if "cv" in b:
        m = b["mean"]
        lines.append(
            f"MSE baseline: {objective} {_g(m['estimate'])} [{_g(m['low'])}, {_g(m['high'])}] "
            f"over {b['n']} seeds; run-to-run noise {100 * b['cv']:.1f}% (std {_g(b['std'])}); with "
            f"{b['n_per_config']} seeds per config the smallest resolvable difference is "
            f"{100 * b['detectable_effect']:.0f}%; to resolve {100 * b['effect_asked']:g}% you need "
            f"about {b['seeds_for_effect']} seeds per config"
        )
    else:
        lines.append(f"MSE baseline: {b.get('note')}")
    return "\n".join(lines)
