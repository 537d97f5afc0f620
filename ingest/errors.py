"""Errors a file can meet on its way into kura. Each one names the file's problem and the fix;
the ingestion report shows both, and the folder carries on with the next file."""

from __future__ import annotations


class DiskFull(RuntimeError):
    """The disk holding the data directory is (nearly) full: not one file's fault, so it stops
    the ingest. Staged chunks stay invisible and the next run picks up where this one stopped."""


class IngestError(Exception):
    """A file kura could not ingest. `reason` is short; `hint` says what the admin can do."""

    reason = "could not be ingested"
    hint = "check the file opens in its usual program, then ingest it again"

    def __init__(self, detail: str = "", hint: str | None = None) -> None:
        self.detail = detail
        if hint is not None:
            self.hint = hint
        super().__init__(f"{self.reason}: {detail}" if detail else self.reason)


class UnsupportedFile(IngestError):
    reason = "unsupported file type"
    hint = "convert it to PDF, DOCX, PPTX, XLSX, HTML, Markdown or text"


class EmptyFile(IngestError):
    reason = "no text found"
    hint = "the file is empty or holds only images kura could not read; check it has content"


class FileTooLarge(IngestError):
    reason = "file larger than the configured limit"
    hint = "raise KURA_MAX_FILE_MB or split the file"


class EncryptedFile(IngestError):
    reason = "file is password-protected"
    hint = "save an unprotected copy and ingest that"


class CorruptFile(IngestError):
    reason = "file is damaged or not what its extension says"
    hint = "open and re-save it in its usual program, or check the extension matches the content"


class UnreadableFile(IngestError):
    reason = "file cannot be read"
    hint = "check the file still exists and kura's user may read it"


class OcrUnavailable(IngestError):
    reason = "OCR is needed but not installed"
    hint = "install tesseract: apt-get install tesseract-ocr tesseract-ocr-jpn poppler-utils"
