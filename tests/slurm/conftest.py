"""The SLURM tier runs against a real cluster started on this machine (tests/slurm/cluster.py).

CI (`CI=true`, where `.ci/run` installs the Debian packages) must bring the cluster up: a cluster
that does not start fails the tier. Elsewhere the tier skips, with one reason, when SLURM is not
installed, or when this user cannot start daemons (they run as root).
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from slurm.cluster import LocalCluster, missing_programs


def _skip_reason() -> str | None:
    missing = missing_programs()
    if missing:
        return f"SLURM is not installed (missing {', '.join(missing)}; .ci/run shows the apt-get line)"
    if os.geteuid() != 0:
        return "the local SLURM cluster's daemons run as root"
    return None


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory: pytest.TempPathFactory) -> LocalCluster:
    reason = _skip_reason()
    if reason is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI must run the SLURM tier: {reason}")
        pytest.skip(reason)
    cluster = LocalCluster(Path(tmp_path_factory.mktemp("slurm"))).start()  # ClusterError: fails, never skips
    yield cluster
    cluster.stop()


@pytest.fixture
def slurm_env(slurm_cluster: LocalCluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment a job submitter needs (SLURM_CONF), set in this process too."""
    monkeypatch.setenv("SLURM_CONF", str(slurm_cluster.conf))
    return slurm_cluster.env
