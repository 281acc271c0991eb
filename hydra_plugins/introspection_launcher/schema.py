"""The schema of conf/hydra/launcher/slurm.yaml: submitit_slurm's keys plus `wckey` and `requeue`
(written into the sbatch script by job_script.py).

No `from __future__ import annotations` here: Hydra's plugin scan runs this module without registering
it in sys.modules, and a dataclass with string annotations looks its module up there.
"""

from dataclasses import dataclass
from typing import Optional

try:  # the `slurm` extra (see launcher.py)
    from hydra.core.config_store import ConfigStore
    from hydra_plugins.hydra_submitit_launcher.config import SlurmQueueConf
except ImportError:  # pragma: no cover
    SlurmQueueConf = None

if SlurmQueueConf is not None:
    @dataclass
    class IntrospectionSlurmConf(SlurmQueueConf):
        wckey: Optional[str] = None  # noqa: UP045 - sbatch --wckey, written only when set
        requeue: bool = True  # sbatch --requeue (false: --no-requeue)

    ConfigStore.instance().store(group="hydra/launcher", name="introspection_slurm", node=IntrospectionSlurmConf,
                                 provider="introspection_launcher")
