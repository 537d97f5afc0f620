"""Read a GGUF file's header without loading the model: metadata, tensor table, completeness.

Parsing the header costs milliseconds, where `llama_cpp.Llama(...)` maps the whole file; so
`kura models add/verify` and `kura doctor` can check a 7 GB model before anyone waits on it.

Usage:
    info = read_gguf(Path("model.gguf"))  # raises ModelInvalid on a truncated or foreign file
    info.context_length, info.has_chat_template
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from models.errors import ModelInvalid, ModelMissing

MAGIC = b"GGUF"

# GGUF value types -> struct format (8 = string, 9 = array handled apart).
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}

# ggml tensor types: (elements per block, bytes per block), from ggml's type traits. Lets us
# compute where the last tensor ends and so tell a truncated download from a complete file.
_BLOCKS = {
    0: (1, 4),
    1: (1, 2),
    2: (32, 18),
    3: (32, 20),
    6: (32, 22),
    7: (32, 24),
    8: (32, 34),
    9: (32, 36),
    10: (256, 84),
    11: (256, 110),
    12: (256, 144),
    13: (256, 176),
    14: (256, 210),
    15: (256, 292),
    16: (256, 66),
    17: (256, 74),
    18: (256, 98),
    19: (256, 50),
    20: (32, 18),
    21: (256, 110),
    22: (256, 82),
    23: (256, 136),
    24: (1, 1),
    25: (1, 2),
    26: (1, 4),
    27: (1, 8),
    28: (1, 8),
    29: (256, 56),
    30: (1, 2),
    34: (256, 54),
    35: (256, 66),
    39: (32, 17),
}


@dataclass(frozen=True)
class GgufInfo:
    path: Path
    version: int
    metadata: dict[str, Any] = field(repr=False)
    tensor_count: int
    data_end: int | None  # where the last tensor ends; None if a tensor type is unknown to us
    file_size: int

    @property
    def architecture(self) -> str:
        return str(self.metadata.get("general.architecture", "unknown"))

    @property
    def name(self) -> str | None:
        value = self.metadata.get("general.name")
        return str(value) if value is not None else None

    @property
    def licence(self) -> str | None:
        value = self.metadata.get("general.license")
        return str(value) if value is not None else None

    @property
    def context_length(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.context_length")
        return int(value) if value is not None else None

    @property
    def block_count(self) -> int | None:
        value = self.metadata.get(f"{self.architecture}.block_count")
        return int(value) if value is not None else None

    @property
    def has_chat_template(self) -> bool:
        return bool(self.metadata.get("tokenizer.chat_template"))


class _Reader:
    def __init__(self, buffer: mmap.mmap, path: Path) -> None:
        self.buf, self.pos, self.path = buffer, 0, path

    def take(self, fmt: str) -> Any:
        size = struct.calcsize(fmt)
        if self.pos + size > len(self.buf):
            raise ModelInvalid(
                f"{self.path} ends inside its GGUF header ({len(self.buf)} bytes): the file is "
                "truncated; download it again and compare its sha256 with the publisher's"
            )
        (value,) = struct.unpack_from(fmt, self.buf, self.pos)
        self.pos += size
        return value

    def string(self) -> str:
        length = self.take("<Q")
        if self.pos + length > len(self.buf):
            self.take(f"<{length}s")  # raises the truncation error
        raw = self.buf[self.pos : self.pos + length]
        self.pos += length
        return raw.decode("utf-8", errors="replace")

    def value(self, kind: int, keep: bool) -> Any:
        if kind == 8:
            return self.string()
        if kind == 9:
            item_kind, count = self.take("<I"), self.take("<Q")
            if not keep and item_kind in _SCALARS:  # skip big arrays (token scores) cheaply
                self.pos += struct.calcsize(_SCALARS[item_kind]) * count
                return None
            items = [self.value(item_kind, keep) for _ in range(count)]
            return items if keep else None
        if kind not in _SCALARS:
            raise ModelInvalid(
                f"{self.path} has an unknown GGUF value type {kind}: not a GGUF model llama.cpp reads"
            )
        return self.take(_SCALARS[kind])


def read_gguf(path: Path) -> GgufInfo:
    """Parse the header of the GGUF file at `path`; raise ModelInvalid if it is not a complete GGUF."""
    if not path.is_file():
        raise ModelMissing(f"model file {path} does not exist; check the path (kura models list)")
    size = path.stat().st_size
    if size < 24:
        raise ModelInvalid(
            f"{path} is {size} bytes: too short to be a GGUF model; download it again"
        )
    with (
        path.open("rb") as handle,
        mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buffer,
    ):
        if buffer[:4] != MAGIC:
            raise ModelInvalid(
                f"{path} is not a GGUF file (starts with {bytes(buffer[:4])!r}); llama.cpp reads only "
                "GGUF: convert the model with llama.cpp's convert_hf_to_gguf.py or download a .gguf"
            )
        r = _Reader(buffer, path)
        r.pos = 4
        version = r.take("<I")
        if version not in (2, 3):
            raise ModelInvalid(
                f"{path} is GGUF version {version}; llama.cpp reads versions 2 and 3"
            )
        tensor_count, kv_count = r.take("<Q"), r.take("<Q")
        metadata: dict[str, Any] = {}
        for _ in range(kv_count):
            key = r.string()
            kind = r.take("<I")
            # Keep everything except the huge tokenizer arrays (vocabulary, merges, scores).
            metadata[key] = r.value(kind, keep=not key.startswith("tokenizer.ggml."))
        data_end: int | None = 0
        tensors: list[tuple[int, int, int]] = []  # (offset, elements, type)
        for _ in range(tensor_count):
            r.string()
            dims = [r.take("<Q") for _ in range(r.take("<I"))]
            kind, offset = r.take("<I"), r.take("<Q")
            elements = 1
            for d in dims:
                elements *= d
            tensors.append((offset, elements, kind))
        alignment = int(metadata.get("general.alignment", 32))
        data_start = -(-r.pos // alignment) * alignment
        for offset, elements, kind in tensors:
            if kind not in _BLOCKS:
                data_end = None
                break
            per_block, block_bytes = _BLOCKS[kind]
            end = data_start + offset + elements // per_block * block_bytes
            data_end = max(data_end or 0, end)
        if tensors and data_end is None:
            data_end_known = max(data_start + offset for offset, _, _ in tensors)
            if data_end_known >= size:
                raise _truncated(path, size, data_end_known)
        elif data_end is not None and data_end > size:
            raise _truncated(path, size, data_end)
    return GgufInfo(path, version, metadata, tensor_count, data_end, size)


def _truncated(path: Path, size: int, needed: int) -> ModelInvalid:
    return ModelInvalid(
        f"{path} is truncated: its tensors need {needed} bytes but the file has {size}; "
        "the download or copy stopped early: fetch it again and check its sha256"
    )
