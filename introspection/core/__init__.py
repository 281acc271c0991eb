"""What every layer stands on: the config schema and its valid values (config.py), the content-addressed
store and its cross-node locks (store.py, locks.py), one-line errors and spawned workers' error reports
(errors.py), model processes' devices and time limits (devices.py, child_process.py), and the records that
cross process boundaries (types.py, payload.py, profile.py)."""
