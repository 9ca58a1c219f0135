"""Build small test PDFs by hand with pypdf (text pages, blank pages, encryption)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import DictionaryObject, NameObject, StreamObject


def _escape(text: str) -> bytes:
    raw = text.encode("cp1252", errors="replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


def _content_stream(lines: Sequence[str]) -> bytes:
    ops = [b"BT", b"/F1 11 Tf", b"14 TL", b"50 780 Td"]
    for line in lines:
        ops.append(b"(" + _escape(line) + b") Tj T*")
    ops.append(b"ET")
    return b"\n".join(ops)


def pdf_bytes(
    pages: Sequence[str | None],
    *,
    password: str | None = None,
    algorithm: str = "RC4-128",
) -> bytes:
    """A PDF with one page per item: a string becomes lines of text, None a blank page."""
    writer = PdfWriter()
    font = writer._add_object(  # noqa: SLF001 - pypdf has no public helper for this
        DictionaryObject(
            {
                NameObject("/Type"): NameObject("/Font"),
                NameObject("/Subtype"): NameObject("/Type1"),
                NameObject("/BaseFont"): NameObject("/Helvetica"),
                NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
            }
        )
    )
    for text in pages:
        page = writer.add_blank_page(595, 842)
        if text is None:
            continue
        stream = StreamObject()
        stream.set_data(_content_stream(text.split("\n")))
        page[NameObject("/Contents")] = writer._add_object(stream)  # noqa: SLF001
        page[NameObject("/Resources")] = DictionaryObject(
            {NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})}
        )
    if password is not None:
        writer.encrypt(password, algorithm=algorithm)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def write_pdf(path: Path, pages: Sequence[str | None], **kwargs) -> Path:
    path.write_bytes(pdf_bytes(pages, **kwargs))
    return path
