"""The pre-flight plan (`experiment.stop_after=plan`): the chosen experiment's own steps run against a recording
executor (recorder.py), their tokens counted (tokens.py) and priced in GPU-hours or dollars (rates.py), the plan
printed (text.py) and written (plan.py). Offline, no model loads, seconds."""
