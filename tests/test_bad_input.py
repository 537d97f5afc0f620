"""Every kind of bad file gets a typed IngestError with a reason and a hint, built for real."""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest

from ingest.errors import (
    CorruptFile,
    EmptyFile,
    EncryptedFile,
    FileTooLarge,
    IngestError,
    UnsupportedFile,
)
from ingest.parse import parse_file
from tests.conftest import shared_doc

PDF = "en/scotus_transcript_p1.pdf"
DOCX = "en/usdoj_chapter13_trustee_handbook_2012.docx"


def _assert_reported(exc: IngestError, kind: type[IngestError]) -> None:
    assert isinstance(exc, kind)
    assert exc.reason and exc.hint and str(exc)


def test_zero_byte_file_is_reported_empty(tmp_path: Path):
    path = tmp_path / "blank.pdf"
    path.touch()
    with pytest.raises(EmptyFile) as caught:
        parse_file(path)
    _assert_reported(caught.value, EmptyFile)


def test_truncated_pdf_is_reported_corrupt(tmp_path: Path):
    data = shared_doc(PDF).read_bytes()
    path = tmp_path / "cut.pdf"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFile) as caught:
        parse_file(path)
    assert "truncated" in str(caught.value)


def test_garbage_pdf_is_reported_corrupt(tmp_path: Path):
    path = tmp_path / "noise.pdf"
    path.write_bytes(b"%PDF-1.4\n" + os.urandom(4000) + b"\n%%EOF\n")
    with pytest.raises(CorruptFile):
        parse_file(path)


def test_password_protected_pdf_is_reported_encrypted(tmp_path: Path):
    import pikepdf

    path = tmp_path / "locked.pdf"
    with pikepdf.open(shared_doc(PDF)) as pdf:
        pdf.save(path, encryption=pikepdf.Encryption(user="secret", owner="secret"))
    with pytest.raises(EncryptedFile) as caught:
        parse_file(path)
    _assert_reported(caught.value, EncryptedFile)


def test_password_protected_docx_is_reported_encrypted(tmp_path: Path):
    from msoffcrypto.format.ooxml import OOXMLFile

    plain = tmp_path / "plain.docx"
    plain.write_bytes(shared_doc(DOCX).read_bytes())
    locked = tmp_path / "locked.docx"
    out = io.BytesIO()
    with plain.open("rb") as handle:
        OOXMLFile(handle).encrypt("secret", out)
    locked.write_bytes(out.getvalue())
    with pytest.raises(EncryptedFile) as caught:
        parse_file(locked)
    _assert_reported(caught.value, EncryptedFile)


def test_truncated_docx_is_reported_corrupt(tmp_path: Path):
    data = shared_doc(DOCX).read_bytes()
    path = tmp_path / "cut.docx"
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(CorruptFile) as caught:
        parse_file(path)
    _assert_reported(caught.value, CorruptFile)


def test_unsupported_binary_is_reported_unsupported(tmp_path: Path):
    path = tmp_path / "tool.exe"
    path.write_bytes(Path("/bin/true").read_bytes())
    with pytest.raises(UnsupportedFile):
        parse_file(path)


def test_binary_named_pdf_says_what_it_really_is(tmp_path: Path):
    path = tmp_path / "invoice.pdf"
    path.write_bytes(Path("/bin/true").read_bytes())
    with pytest.raises(UnsupportedFile) as caught:
        parse_file(path)
    assert "named .pdf" in str(caught.value)


def test_binary_named_txt_is_reported_not_indexed_as_garbage(tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_bytes(b"\x00\x01\x02" * 500)
    with pytest.raises(IngestError):
        parse_file(path)


def test_one_bad_file_does_not_stop_the_folder(tmp_path: Path, settings, embedder):
    from app.service import KuraService

    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.md").write_text("# Holidays\n\nThe office closes on national holidays.\n")
    (folder / "empty.pdf").touch()
    (folder / "cut.pdf").write_bytes(shared_doc(PDF).read_bytes()[:5000])
    (folder / "huge.txt").write_bytes(b"x" * 3_000_000)
    (folder / "loop").symlink_to(folder, target_is_directory=True)  # a symlink loop

    from ingest.pipeline import Index, sync_folder

    service = KuraService(settings, embedder=embedder)
    try:
        index: Index = service.index  # type: ignore[attr-defined]
        index.max_file_bytes = 2_000_000
        report = sync_folder(folder, ("everyone",), index)
    finally:
        service.close()
    by_name = {Path(r.path).name: r for r in report.results}
    assert by_name["good.md"].status == "ingested"
    assert "loop" not in " ".join(by_name)  # not walked, not failed, not looped
    for name, reason in [
        ("empty.pdf", EmptyFile),
        ("cut.pdf", CorruptFile),
        ("huge.txt", FileTooLarge),
    ]:
        result = by_name[name]
        assert result.status == "failed" and result.hint, name
        assert result.reason.startswith(reason.reason), (name, result.reason)


def test_symlink_loop_is_not_followed(tmp_path: Path):
    from ingest.pipeline import list_files

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "doc.md").write_text("text")
    (tmp_path / "a" / "back").symlink_to(tmp_path, target_is_directory=True)
    assert list_files(tmp_path) == [tmp_path / "a" / "doc.md"]


def test_qpdf_damaged_xref_pdf_still_reads_or_reports(tmp_path: Path):
    """A PDF whose cross-reference table is broken: qpdf-style repair or a CorruptFile."""
    data = bytearray(shared_doc(PDF).read_bytes())
    start = data.rfind(b"startxref")
    data[start + 10 : start + 16] = b"999999"
    path = tmp_path / "badxref.pdf"
    path.write_bytes(bytes(data))
    subprocess.run(["qpdf", "--check", str(path)], capture_output=True, check=False)
    try:
        parsed = parse_file(path)
    except CorruptFile:
        return
    assert "SUPREME COURT" in " ".join(b.text for b in parsed.blocks)
