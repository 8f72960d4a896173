"""Assembling the packaged GGUF: verified, atomic, done once per cache folder."""

from __future__ import annotations

from pathlib import Path

from agentplatform.providers.gguf_files import ensure_packaged_gguf, packaged_model


def test_assembly_is_verified_and_reused(gguf_cache: Path) -> None:
    model = packaged_model()
    first = ensure_packaged_gguf(gguf_cache)
    before = first.stat()
    assert first == gguf_cache / model.file_name
    assert before.st_size == model.size > 100_000_000

    second = ensure_packaged_gguf(gguf_cache)
    after = second.stat()
    assert second == first
    # Same inode and modification time: the file was reused, not written again.
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        before.st_ino,
        before.st_mtime_ns,
        before.st_size,
    )
    assert [p.name for p in gguf_cache.iterdir()] == [model.file_name]


def test_truncated_file_is_replaced(gguf_cache: Path, tmp_path: Path) -> None:
    model = packaged_model()
    target = tmp_path / model.file_name
    target.write_bytes(b"GGUF, but cut short")

    assembled = ensure_packaged_gguf(tmp_path)

    assert assembled == target
    assert assembled.stat().st_size == model.size
    assert sorted(p.name for p in tmp_path.iterdir()) == [model.file_name]
    assembled.unlink()  # ~250 MB: do not leave it in pytest's kept temp folders
