"""Benchmarks of the framework against the libraries it wraps (`make bench`, not part of `make test`).

    python -m benchmarks.run --out bench_results/bench.json

Measured side by side in one run, on the same prompts and sampling: our inference stage vs raw vLLM
`LLM.chat` with our engine settings and vs vLLM with its own defaults, the vLLM backend vs the HF backend,
our finetune stage vs raw TRL `SFTTrainer`, and the demo from an empty store (wall time, peak memory of
all its processes together, its stage profile) followed by its rerun on the same store.
"""
