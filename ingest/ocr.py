"""Read text from scanned pages and images with Debian's tesseract (`eng+jpn`).

tesseract runs as a plain subprocess: unstructured's own OCR path drops Japanese lines that
plain tesseract reads (measured, DESIGN.md). Pages are rasterised with poppler's `pdftoppm`.
One tesseract thread per process (OMP_THREAD_LIMIT=1): the server's cores are shared, and
tesseract's OpenMP threads spin instead of working when the machine is busy.

Usage:
    text = ocr_image(Path("scan.png"))
    by_page = ocr_pdf_pages(Path("scan.pdf"), pages=[1, 2])
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from base.cjk import CJK
from ingest.errors import CorruptFile, OcrUnavailable

OCR_LANGUAGES = "eng+jpn"
RASTER_DPI = 200  # tesseract's accuracy drops below ~150 dpi for 10pt text; 300 doubles the time
_CJK = CJK
# tesseract puts spaces between Japanese characters (and digits inside Japanese): not meaning.
_SPACE_IN_CJK = re.compile(
    rf"(?<=[{_CJK}0-9０-９])[ \t]+(?=[{_CJK}])|(?<=[{_CJK}])[ \t]+(?=[0-9０-９])"
)


def _tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if not found:
        raise OcrUnavailable(
            f"`{name}` is not installed", hint=f"install it: apt-get install {package}"
        )
    return found


def _run(args: list[str], what: str, timeout_s: int) -> str:
    env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
    try:
        done = subprocess.run(args, capture_output=True, env=env, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise CorruptFile(f"{what} took longer than {timeout_s} s") from exc
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise CorruptFile(f"{what} failed: {message[-1] if message else done.returncode}")
    return done.stdout.decode("utf-8", "replace")


def clean_ocr_text(text: str) -> str:
    text = _SPACE_IN_CJK.sub("", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def ocr_image(image: Path, languages: str = OCR_LANGUAGES, timeout_s: int = 300) -> list[str]:
    """The text tesseract reads in `image`, one string per frame (a multi-page TIFF has several)."""
    tesseract = _tool("tesseract", "tesseract-ocr tesseract-ocr-jpn")
    # "-" as output writes to stdout; `--` is not understood, so a leading "-" in a name is
    # guarded by passing an absolute path.
    raw = _run(
        [tesseract, str(image.absolute()), "-", "-l", languages], f"OCR of {image.name}", timeout_s
    )
    frames = [clean_ocr_text(frame) for frame in raw.split("\f")]
    while frames and not frames[-1]:
        frames.pop()  # tesseract ends its output with a form feed
    return frames


def ocr_pdf_pages(
    pdf: Path, pages: Iterable[int], languages: str = OCR_LANGUAGES
) -> dict[int, str]:
    """OCR the given 1-based pages of `pdf`; returns {page: text} for pages where text was found."""
    pdftoppm = _tool("pdftoppm", "poppler-utils")
    found: dict[int, str] = {}
    with tempfile.TemporaryDirectory(prefix="kura-ocr-") as tmp:
        for page in pages:
            prefix = Path(tmp) / f"p{page}"
            _run(
                [
                    pdftoppm,
                    "-r",
                    str(RASTER_DPI),
                    "-gray",
                    "-png",
                    "-f",
                    str(page),
                    "-l",
                    str(page),
                    "-singlefile",
                    str(pdf.absolute()),
                    str(prefix),
                ],
                f"rasterising page {page} of {pdf.name}",
                timeout_s=120,
            )
            text = "\n\n".join(ocr_image(prefix.with_suffix(".png"), languages))
            if text:
                found[page] = text
            prefix.with_suffix(".png").unlink(missing_ok=True)
    return found


def ocr_available() -> bool:
    return shutil.which("tesseract") is not None and shutil.which("pdftoppm") is not None
