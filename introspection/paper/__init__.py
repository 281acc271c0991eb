"""The paper's definitions (docs/method.md): tasks and their item sources (tasks/), response properties
(properties.py), answer normalisation and compliance (normalize.py, compliance.py), object-level and
hypothetical prompts (prompts.py), and the authors' released rows as items (release.py, verify_release.py)."""
