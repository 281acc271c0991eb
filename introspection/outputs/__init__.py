"""What a run leaves behind: results.json, matrix.csv, items.jsonl and W&B (run_outputs.py), report.md
(report.py), the types results.json is read back into (results.py), the sweep's N x N table and figures
(sweep.py, sweep_plots.py) and the Hydra callbacks that keep a job's folder (run_folder.py)."""
