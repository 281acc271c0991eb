"""Self-/cross-prediction finetuning: SFT rows (data.py), the settings (sft_settings.py), the TRL/PEFT trainer
(trainer.py), a training run (training.py) and its label mask (label_mask.py).

The modules import torch/TRL lazily, so importing this package stays cheap.
"""
