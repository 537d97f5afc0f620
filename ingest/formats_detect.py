"""Decide what a file really is from its bytes, so a PDF named .docx is read as a PDF and an
encrypted or legacy Office file is reported as such instead of failing deep inside a parser.

Binary formats are recognised by content (libmagic); text formats (HTML, Markdown, CSV, mail,
plain text) all look like "text" to libmagic, so for those the extension decides.

Usage:
    kind = detect_format(Path("report.docx"))   # "pdf" if the bytes are a PDF
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import magic

from ingest.errors import EncryptedFile, UnsupportedFile

FileFormat = Literal[
    "pdf", "docx", "pptx", "xlsx", "csv", "html", "md", "text", "eml", "msg", "image"
]

FORMAT_BY_SUFFIX: dict[str, FileFormat] = {
    ".pdf": "pdf",
    ".docx": "docx",
    ".pptx": "pptx",
    ".xlsx": "xlsx",
    ".csv": "csv",
    ".tsv": "csv",
    ".html": "html",
    ".htm": "html",
    ".xhtml": "html",
    ".md": "md",
    ".markdown": "md",
    ".txt": "text",
    ".text": "text",
    ".eml": "eml",
    ".msg": "msg",
    ".png": "image",
    ".jpg": "image",
    ".jpeg": "image",
    ".tif": "image",
    ".tiff": "image",
}

_FORMAT_BY_MIME: dict[str, FileFormat] = {
    "application/pdf": "pdf",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": "pptx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
    "image/png": "image",
    "image/jpeg": "image",
    "image/tiff": "image",
    "message/rfc822": "eml",
}
_OOXML = frozenset({"docx", "pptx", "xlsx"})
_TEXTUAL = frozenset({"csv", "html", "md", "text", "eml"})
# Old binary Office formats: readable only through LibreOffice, which kura does not ship.
_LEGACY_OFFICE = {
    "application/msword": ".doc",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.ms-powerpoint": ".ppt",
}


def detect_format(path: Path) -> FileFormat:
    """The format to parse `path` as. Raises `UnsupportedFile` or `EncryptedFile`."""
    by_suffix = FORMAT_BY_SUFFIX.get(path.suffix.lower())
    mime = magic.from_file(str(path), mime=True)
    by_content = _FORMAT_BY_MIME.get(mime)
    if by_content is not None:
        if by_content == "eml" and by_suffix in _TEXTUAL:
            return by_suffix  # a Markdown file that starts with "From:" is still Markdown
        if by_content in _OOXML and by_suffix in _OOXML:
            # libmagic sometimes names the wrong OOXML member; the zip's content types decide.
            return _ooxml_kind(path) or by_suffix
        return by_content
    if mime in ("application/zip", "application/octet-stream") and by_suffix in _OOXML:
        return _ooxml_kind(path) or by_suffix  # the Office parser will say if the zip is broken
    if mime in ("application/x-ole-storage", "application/CDFV2", "application/vnd.ms-outlook"):
        return _ole_kind(path, by_suffix)
    if mime.startswith("application/cdfv2") or mime == "application/encrypted":
        return _ole_kind(path, by_suffix)
    if mime in _LEGACY_OFFICE:
        raise UnsupportedFile(
            f"{path.name} is a legacy {_LEGACY_OFFICE[mime]} file",
            hint=f"save it as {_LEGACY_OFFICE[mime]}x (File > Save As) and ingest that copy",
        )
    if mime.startswith("text/") or mime in ("application/xml", "application/json", "inode/x-empty"):
        if by_suffix in _TEXTUAL:
            return by_suffix
        if by_suffix is None and mime in ("text/plain",):
            return "text"  # a README without an extension is still text
    if by_suffix is not None and by_suffix not in _TEXTUAL:
        raise UnsupportedFile(
            f"{path.name} is named {path.suffix} but its content is {mime}",
            hint="check the file is not damaged or mislabelled; rename it to its real type",
        )
    raise UnsupportedFile(f"{path.name}: {mime} ({path.suffix or 'no extension'})")


def _ooxml_kind(path: Path) -> FileFormat | None:
    """Read the zip's [Content_Types].xml: the one reliable way to tell docx/pptx/xlsx apart."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            types = archive.read("[Content_Types].xml").decode("utf-8", "replace")
    except (zipfile.BadZipFile, KeyError, OSError, EOFError):
        return None
    if "wordprocessingml.document.main" in types:
        return "docx"
    if "presentationml.presentation.main" in types:
        return "pptx"
    if "spreadsheetml.sheet.main" in types:
        return "xlsx"
    return None


def _ole_kind(path: Path, by_suffix: FileFormat | None) -> FileFormat:
    """An OLE compound file: an Outlook .msg, an encrypted Office file, or legacy Office."""
    import msoffcrypto

    with path.open("rb") as handle:
        try:
            office = msoffcrypto.OfficeFile(handle)
            encrypted = office.is_encrypted()
        except Exception:  # not an Office container msoffcrypto knows (e.g. an Outlook .msg)
            encrypted = False
    if encrypted:
        raise EncryptedFile(f"{path.name} is an encrypted Office document")
    if by_suffix == "msg" or _is_outlook_message(path):
        return "msg"
    raise UnsupportedFile(
        f"{path.name} is a legacy binary Office file",
        hint="save it as .docx, .xlsx or .pptx (File > Save As) and ingest that copy",
    )


def _is_outlook_message(path: Path) -> bool:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            return ole.exists("__properties_version1.0")
    except OSError:
        return False
