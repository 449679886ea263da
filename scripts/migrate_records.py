"""Bring run records to the current identity scheme (schema 2) without changing a number.

    python scripts/migrate_records.py                 # every record under results/
    python scripts/migrate_records.py --results runs/quick --dry-run

A schema-1 record (`<task>__<method>__seed<k>.json`) gets its `config_hash` (computed from the
config it stores, harness.identity), `schema: 2`, an empty-but-labelled `provenance`, and the name
`<task>__<method>__seed<k>__<hash>.json`. A record whose config names a module that has since moved
(MOVED_MODULES: `tasks/` laid out by paper) gets the module's new path in each `_target_`, so
`skip_done` and the tables see it as the run today's configs describe; its hash and name follow,
and `provenance` keeps `migrated_targets` (old -> new) and `config_hash_before`. Everything else is
copied byte for byte in meaning: metrics, curve, cost, the rest of the config, git sha, dates.
Re-runnable: a record already migrated is left alone, so the command can follow every merge that
brings in older records.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from a clone without installing

from harness.identity import config_hash  # noqa: E402
from harness.records import SCHEMA, is_record_path, record_filename, write_atomic  # noqa: E402


# Old module path -> new, for every module a `_target_` could name that has moved. One entry per
# move, never removed: a record made before the move migrates whenever it turns up.
MOVED_MODULES: dict[str, str] = {
    # Issue 18: tasks/ by paper. Trace (arXiv 2406.16218):
    **{f"tasks.{name}": f"tasks.trace_paper.{name}"
       for name in ("numeric", "numeric_sampler", "traffic", "bbh", "bbh_agent", "textgrad_tasks", "metaworld")},
    # Dualformer (arXiv 2410.09918) over Searchformer (arXiv 2402.14083):
    **{f"tasks.{name}": f"tasks.dualformer_paper.{name}"
       for name in ("astar", "planning", "maze", "sokoban", "latex",
                    "math", "math_answers", "math_data", "math_grader", "math_sympy")},
}


def moved_target(target: str) -> str | None:
    """The new dotted path of `target` when its module moved (whole segments only), else None."""
    for old, new in MOVED_MODULES.items():
        if target == old or target.startswith(old + "."):
            return new + target[len(old):]
    return None


def move_targets(value: Any, moved: dict[str, str]) -> Any:
    """`value` with every moved `_target_` rewritten; `moved` collects old -> new."""
    if isinstance(value, dict):
        out = {k: move_targets(v, moved) for k, v in value.items()}
        new = moved_target(out["_target_"]) if isinstance(out.get("_target_"), str) else None
        if new is not None:
            moved[out["_target_"]], out["_target_"] = new, new
        return out
    if isinstance(value, list):
        return [move_targets(v, moved) for v in value]
    return value


def migrate(path: Path, dry_run: bool = False) -> Path | None:
    """Migrate one record file; returns its new path, or None when it was already current."""
    data = json.loads(path.read_text())
    moved: dict[str, str] = {}
    config = move_targets(data["config"], moved)
    digest = config_hash(config)
    target = path.with_name(record_filename(data["task"], data["method"], data["seed"], digest))
    if data.get("schema") == SCHEMA and data.get("config_hash") == digest and target == path:
        return None
    if target.exists() and target != path:
        raise SystemExit(f"error: {path} would become {target.name}, which exists: the same config "
                         "and seed twice; keep one of them")
    hash_before = data.get("config_hash") or config_hash(data["config"])
    data["schema"], data["config_hash"], data["config"] = SCHEMA, digest, config
    provenance = data.setdefault("provenance", {"migrated_from": path.name, "note": "recorded before "
                                                "provenance was kept: see git_sha and packages"})
    if moved:
        provenance["migrated_targets"] = {**provenance.get("migrated_targets", {}), **moved}
        provenance.setdefault("config_hash_before", hash_before)
    if not dry_run:
        write_atomic(target, json.dumps(data, indent=1, allow_nan=False))
        if target != path:
            path.unlink()
    return target


def record_paths(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*.json") if is_record_path(p) and p.parent.name not in ("tables", "figures"))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=ROOT / "results", help="folder of run records")
    parser.add_argument("--dry-run", action="store_true", help="say what would change, change nothing")
    args = parser.parse_args(argv)
    changed = 0
    for path in record_paths(args.results):
        target = migrate(path, args.dry_run)
        if target is not None:
            changed += 1
            print(f"{path.relative_to(args.results)} -> {target.name}")
    print(f"{changed} record(s) {'would be ' if args.dry_run else ''}migrated", file=sys.stderr)


if __name__ == "__main__":
    main()
