"""The harness's SLURM launcher (the work is in harness/slurm.py), named where Hydra accepts
launchers from: a plugin class must live under `hydra_plugins`. Hydra imports this package at
every start; without the `slurm` extra there is no launcher to offer, and nothing is said."""
try:
    from harness.slurm import HarnessSlurmLauncher
except ImportError:  # hydra-submitit-launcher is not installed
    HarnessSlurmLauncher = None

if HarnessSlurmLauncher is not None:
    class SlurmLauncher(HarnessSlurmLauncher):
        """configs/hydra/launcher/slurm.yaml's `_target_`."""
