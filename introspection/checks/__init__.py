"""Checks at the start of a run, before any model or data work: the config and task data (start_checks.py),
whether each finetune, engine and merge fits the GPUs' memory (memory_fit.py), a model's own files: folder,
chat template, LoRA rank, context length (model_checks.py). A bad value ends the run in one line, in seconds."""
