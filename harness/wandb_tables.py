"""Tables and figures of `scripts/make_tables.py`, pushed to W&B beside the runs they summarise.

One W&B run per table (job type `tables`, in the experiment's group, so it sits with that
experiment's runs), holding the table as a wandb.Table, the figure as an image, and both files as
an artifact. Offline by default, like every run here (`wandb sync` uploads it later).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable


def push_tables(written: Iterable[Path], directory: Path, project: str = "trace-dualformer",
                mode: str = "offline") -> list[str]:
    """Push every table (`<name>.csv` with its `.md` and `.png`) in `written`; returns the run names."""
    import pandas as pd
    import wandb

    pushed = []
    for csv in sorted(p for p in map(Path, written) if p.suffix == ".csv"):
        name = csv.stem  # "<experiment>" or "<experiment>.<mode>..."
        experiment = name.split(".")[0]
        figure = csv.parent.parent / "figures" / f"{name}.png"
        markdown = csv.with_suffix(".md")
        directory.mkdir(parents=True, exist_ok=True)
        run = wandb.init(project=project, name=f"table {name}", group=experiment, job_type="tables",
                         dir=str(directory), mode=os.environ.get("WANDB_MODE", mode), reinit="finish_previous",
                         config={"table": name, "experiment": experiment},
                         settings=wandb.Settings(console="off", silent=True, x_disable_stats=True))
        frame = pd.read_csv(csv)
        # Numbers stay numbers (W&B can sort, filter and plot them); text columns are text, and an
        # empty cell (no paper value) is None rather than NaN.
        frame = frame.astype({c: str for c in frame.columns if frame[c].dtype == object})
        frame = frame.astype(object).where(frame.notna(), None)
        logged = {"table": wandb.Table(dataframe=frame)}
        if figure.is_file():
            logged["figure"] = wandb.Image(str(figure))
        run.log(logged)
        artifact = wandb.Artifact(name=f"table-{name.replace('.', '-')}", type="paper_table")
        training = figure.with_name(f"{name}_training.png")  # beside a results figure (harness.figures)
        for path in (csv, markdown, figure, training):
            if path.is_file():
                artifact.add_file(str(path), name=path.name)
        run.log_artifact(artifact)
        run.finish()
        pushed.append(name)
    return pushed
