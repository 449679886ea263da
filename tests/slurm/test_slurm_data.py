"""Dataset generation as a SLURM array job: each task writes its share of the shards, and the
task that finds them all written seals the manifest; the dataset is the one a single process makes."""
from __future__ import annotations

import json
import subprocess
import sys
import time

from support import ROOT

SMALL = ["maze", "--size", "6", "--train", "60", "--test", "20", "--shard-size", "10", "--workers", "1", "--no-progress"]


def test_an_array_job_writes_the_dataset_one_process_would(slurm_cluster, tmp_path):
    out = tmp_path / "array"
    script = f"{sys.executable} {ROOT / 'scripts' / 'gen_data.py'} {' '.join(SMALL)} --out {out} --slurm-array"
    submitted = slurm_cluster.run("sbatch", "--parsable", "--array=0-2", "--cpus-per-task=1", "--mem=1G",
                                  f"--output={tmp_path}/gen-%a.log", "--wrap", script)
    job = submitted.stdout.strip().split(";")[0]
    deadline = time.time() + 180
    while time.time() < deadline and slurm_cluster.run("squeue", "-h", "-j", job, check=False).stdout.strip():
        time.sleep(0.5)
    logs = "".join(p.read_text() for p in sorted(tmp_path.glob("gen-*.log")))
    states = slurm_cluster.run("sacct", "-n", "-X", "-j", job, "-o", "State").stdout.split()
    assert states and set(states) == {"COMPLETED"}, states + [logs]
    manifest = json.loads((out / "manifest.json").read_text())
    single = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_data.py"), *SMALL, "--out", str(tmp_path / "one")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert single.returncode == 0, single.stderr
    assert manifest["dataset_sha256"] == json.loads((tmp_path / "one" / "manifest.json").read_text())["dataset_sha256"]
    assert logs.count("shards of") == 3 and logs.count("manifest") >= 1, logs  # each task said its share
