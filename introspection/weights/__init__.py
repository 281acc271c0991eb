"""Where a model's weights come from: an entry resolved into a loadable folder or hub id (resolve.py), the
embedded GGUF models converted once to safetensors (embedded.py), fingerprints and hub commits that name
weights in artifact keys (fingerprints.py), chat templates and pad tokens (chat_templates.py)."""
