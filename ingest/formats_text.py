"""Decode text files whatever their encoding: UTF-8 (with or without BOM), UTF-16, and the
Japanese legacy encodings (Shift_JIS/CP932, EUC-JP, ISO-2022-JP) still common on file servers."""

from __future__ import annotations

import codecs

from ingest.errors import CorruptFile

# Tried strictly, in order: a wrong guess fails to decode rather than producing mojibake.
# CP932 before EUC-JP: Windows file servers hold far more Shift_JIS than EUC-JP.
_STRICT_ORDER = ("utf-8", "cp932", "euc_jp", "iso2022_jp")


def decode_text(data: bytes) -> str:
    if data.startswith(codecs.BOM_UTF8):
        return data[len(codecs.BOM_UTF8) :].decode("utf-8", "replace")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace")
    if b"\x00" in data[:4096]:
        raise CorruptFile(
            "the file holds binary data, not text",
            hint="check the extension matches the content; rename it to its real type",
        )
    for encoding in _STRICT_ORDER:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None:
        raise CorruptFile("the text's encoding could not be recognised", hint="save it as UTF-8")
    return str(best)
