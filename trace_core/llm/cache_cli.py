"""Look into a response cache and evict what should be asked again.

    python -m trace_core.llm.cache_cli list runs/llm_cache.sqlite            # newest rows first
    python -m trace_core.llm.cache_cli list runs/llm_cache.sqlite --marked   # rows with a note
    python -m trace_core.llm.cache_cli evict runs/llm_cache.sqlite KEY [KEY ...]
    python -m trace_core.llm.cache_cli evict runs/llm_cache.sqlite --marked

A key is what `list` shows (a unique prefix of at least 8 characters will do). Evicting a row
means the next run asks the model again for that request; a replay of a run that used it misses.
To ask again every request of one run instead, run it with `llm.cache_mode=refresh`.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .base import last_user_text, one_line
from .cache import open_cache


def rows(path: Path, marked: bool, limit: int) -> list[tuple]:
    db = open_cache(path)
    where = "WHERE note != ''" if marked else ""
    return db.execute(f"SELECT key, created, model, endpoint, sample, note, messages FROM completions {where} "
                      f"ORDER BY created DESC LIMIT ?", (limit,)).fetchall()


def list_rows(path: Path, marked: bool, limit: int) -> int:
    for key, created, model, endpoint, sample, note, messages in rows(path, marked, limit):
        question = one_line(last_user_text(json.loads(messages)), 70)
        print(f"{key}  {created}  {model}  {endpoint or '-'}  sample={sample}  note={note or '-'}  {question!r}")
    return 0


def evict(path: Path, keys: list[str], marked: bool) -> int:
    db = open_cache(path)
    if marked:
        removed = db.execute("DELETE FROM completions WHERE note != ''").rowcount
        print(f"evicted {removed} marked row(s) from {path}")
        return 0
    for prefix in keys:
        if len(prefix) < 8:
            print(f"error: key {prefix!r} is too short (give at least 8 characters)", file=sys.stderr)
            return 2
        found = db.execute("SELECT key FROM completions WHERE key LIKE ?", (prefix + "%",)).fetchall()
        if len(found) != 1:
            what = "no row" if not found else f"{len(found)} rows"
            print(f"error: {what} with a key starting {prefix!r} in {path}", file=sys.stderr)
            return 2
        db.execute("DELETE FROM completions WHERE key = ?", (found[0][0],))
        print(f"evicted {found[0][0]}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trace_core.llm.cache_cli", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("list", help="rows of the cache, newest first")
    show.add_argument("path", type=Path)
    show.add_argument("--marked", action="store_true", help="only rows with a note (cut off, unreadable)")
    show.add_argument("--limit", type=int, default=50)
    drop = commands.add_parser("evict", help="remove rows, so the next run asks again")
    drop.add_argument("path", type=Path)
    drop.add_argument("keys", nargs="*")
    drop.add_argument("--marked", action="store_true", help="every row with a note")
    args = parser.parse_args(argv)
    if not args.path.exists():
        print(f"error: no cache file at {args.path}", file=sys.stderr)
        return 2
    if args.command == "list":
        return list_rows(args.path, args.marked, args.limit)
    if not args.keys and not args.marked:
        print("error: name the keys to evict, or --marked", file=sys.stderr)
        return 2
    return evict(args.path, args.keys, args.marked)


if __name__ == "__main__":
    sys.exit(main())
