"""The steps an experiment composes (steps.py: resolve models, answer, train self / cross, merge, score), the
executor that carries them out (executor.py: worker processes and the store, both sides at once on disjoint GPU
sets) and the context of one run handed to an experiment (run_context.py). The pre-flight plan takes the same
steps with its own executor (introspection/preflight/recorder.py)."""
