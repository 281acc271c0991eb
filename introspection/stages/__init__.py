"""The stages of the experiment, each a function from artifacts to one artifact in the store.

    build    tasks x properties -> items and rendered prompts (object-level, hypothetical)   items.py
    behave   model x items -> object-level answers                                           answers.py
    prepare  (predictor, target answers) -> SFT rows: hypothetical prompt -> target's value   rows.py
    finetune base model + rows -> LoRA adapter (+ lineage record)                           adapters.py
    predict  predictor x hypothetical prompts -> predicted values                           answers.py

`behave` and `predict` are both "answer these chat requests with this model", so they share one
artifact kind (`answers`) keyed by model, adapter, prompts and sampling. Stages that load a model run
in a spawned process (introspection.stages.worker, started by worker_runs.py); these modules only decide what is
missing and hand the worker its payload (introspection/core/payload.py). A model as the stages see it is a
ModelRef (model_ref.py); the settings a finetune trains with, and its adapter's key, are finetune_settings.py's.

Each stage that takes time adds a record to the run's profile when it is given one (`profile=`,
introspection/core/profile.py); without one (a test, a benchmark) nothing is recorded.
"""
