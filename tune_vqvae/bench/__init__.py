"""Benchmarks (no ray): `python -m tune_vqvae.bench [train|overhead|fid|fused|packing|all|search|load]`
and the GPU check `python -m tune_vqvae.bench.gpu_check`.

    compute       train, overhead, fid, fused, packing: timed side by side in one process
    timing        BenchConfig, Timer, interleaved repeats, error rows, the printed table
    search_sim    the search simulated in-process on synthetic curves (sampler, ASHA, answer)
    search_budget the search under a distortion budget (strategy constrained) and its truth
    search_score  regret, claims and their intervals; the issue targets; worker processes
    search_cli    `bench search`: flags, summary, JSON
    load          `bench load`: N --mock searches at once, checked for lost or doubled work
    gpu_check     every CUDA path against fp32, then the benchmarks, under time caps
"""

import sys


def main(argv=None) -> int:
    """`python -m tune_vqvae.bench WHAT ...`: `search` and `load` have flags of their own (and
    need no torch model), so they are dispatched before the compute benchmarks' parser."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["search"]:
        from .search_cli import main as search_main

        return search_main(argv[1:])
    if argv[:1] == ["load"]:
        from .load import main as load_main

        return load_main(argv[1:])
    from .compute import main as compute_main

    return compute_main(argv)
