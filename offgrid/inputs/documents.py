"""PDF, plain text, Markdown and HTML in; numbered pages of text out.

`load()` is the only entry point the commands need. It never prints: problems with the input
become one-line `InputError`s (a malformed `--pages` value is a `UsageError`), and whatever pypdf
says along the way is collected in `Document.warnings` instead of reaching the terminal.
"""

from __future__ import annotations

import codecs
import io
import logging
import re
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import BinaryIO

from offgrid.errors import InputError, UsageError

STDIN_NAME = "<stdin>"
CRYPTO_PIP_LINE = "pip install 'pypdf[crypto]'"

_PDF_MAGIC = b"%PDF-"
_HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
_HTML_SNIFF = re.compile(rb"^\s*(<!--.*?-->\s*)*<(!doctype\s+html|html[\s>]|head[\s>]|body[\s>])", re.I | re.S)
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_BINARY_BYTES = frozenset([*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F])
_BINARY_MIN_SAMPLE = 256  # shorter inputs are judged as text, stray bytes and all
_MANY_BLANK_LINES = re.compile(r"\n[ \t]*\n(?:[ \t]*\n)+")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")

# Inputs that are clearly not documents, and the command that does take them.
_OTHER_MEDIA: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image", "offgrid see {name}"),
    (b"\xff\xd8\xff", "a JPEG image", "offgrid see {name}"),
    (b"GIF8", "a GIF image", "offgrid see {name}"),
    (b"RIFF", "a RIFF (WAV/WebP) file", "offgrid see {name}  or  offgrid transcribe {name}"),
    (b"ID3", "an MP3 file", "offgrid transcribe {name}"),
    (b"OggS", "an Ogg audio file", "offgrid transcribe {name}"),
    (b"fLaC", "a FLAC audio file", "offgrid transcribe {name}"),
    (b"PK\x03\x04", "a ZIP archive (e.g. .docx/.odt)", "export it as PDF or text first"),
)


@dataclass(frozen=True)
class Page:
    """One page of text; `number` is 1-based and refers to the original document."""

    number: int
    text: str


@dataclass
class Document:
    """A loaded document: a display name, its selected pages, and any parser warnings."""

    name: str
    pages: list[Page]
    warnings: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        """All page texts joined with blank lines."""
        return "\n\n".join(page.text for page in self.pages if page.text)

    @property
    def page_numbers(self) -> list[int]:
        return [page.number for page in self.pages]


def load(
    source: str | Path,
    *,
    pages: str | None = None,
    password: str | None = None,
    stdin: BinaryIO | None = None,
) -> Document:
    """Read a file (or `-` for stdin) and return its pages of text.

    `pages` selects pages ("3-7,10"); text files have one page, or one per form feed.
    Raises InputError for anything the user has to fix about the input.
    """
    name, data = _read_source(source, stdin)
    return parse(name, data, pages=pages, password=password)


def parse(name: str, data: bytes, *, pages: str | None = None, password: str | None = None) -> Document:
    """Like `load`, for bytes already in hand (e.g. the clipboard); `name` labels errors."""
    if not data.strip():
        raise InputError(f"{name} is empty", hint=_empty_hint(name))
    if _looks_like_pdf(name, data):
        return _load_pdf(name, data, pages, password)
    _reject_other_media(name, data)
    _reject_binary(name, data)
    if _looks_like_html(name, data):
        raw_pages = [html_to_text(decode_html(data))]
    else:
        raw_pages = decode_text(data).split("\f")
    document = Document(name, _select_pages([_clean_text(text) for text in raw_pages], pages, name))
    if not any(page.text for page in document.pages):
        raise InputError(f"{name} contains no text", hint=_empty_hint(name))
    return document


# --- sources -------------------------------------------------------------------------------


def _read_source(source: str | Path, stdin: BinaryIO | None) -> tuple[str, bytes]:
    if str(source) == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        return STDIN_NAME, stream.read()
    path = Path(source).expanduser()
    name = str(source)
    try:
        return name, path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"no such file: {name}") from None
    except IsADirectoryError:
        raise InputError(f"{name} is a directory, not a document") from None
    except PermissionError:
        raise InputError(f"permission denied: {name}") from None
    except OSError as exc:
        raise InputError(f"cannot read {name}: {exc.strerror or exc}") from None


def _empty_hint(name: str) -> str | None:
    if name == STDIN_NAME:
        return "pipe some text in, e.g.  pdftotext file.pdf - | offgrid summarize"
    return None


def _looks_like_pdf(name: str, data: bytes) -> bool:
    return _PDF_MAGIC in data[:1024] or name.lower().endswith(".pdf")


def _looks_like_html(name: str, data: bytes) -> bool:
    if Path(name).suffix.lower() in _HTML_SUFFIXES:
        return True
    head = data[:2048]
    for bom in (codecs.BOM_UTF8,):
        head = head.removeprefix(bom)
    return bool(_HTML_SNIFF.match(head))


def _reject_other_media(name: str, data: bytes) -> None:
    for magic, kind, hint in _OTHER_MEDIA:
        if data.startswith(magic):
            raise InputError(f"{name} is {kind}, not a document", hint=hint.format(name=name))


def _reject_binary(name: str, data: bytes) -> None:
    """Data that is mostly not text (a model file, random bytes) is an error, not a
    summary of noise. A few stray control bytes in text stay allowed."""
    sample = data[:8192]
    if len(sample) < _BINARY_MIN_SAMPLE or _guess_utf16(sample) or sample.startswith(
            (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE, codecs.BOM_UTF32_BE)):
        return
    if sum(1 for byte in sample if byte in _BINARY_BYTES) > 0.05 * len(sample):
        raise InputError(f"{name} looks like binary data, not a document",
                         hint="summarize reads PDF, text, Markdown and HTML")


# --- page selection ------------------------------------------------------------------------


def parse_page_ranges(spec: str, n_pages: int) -> list[int]:
    """Turn "3-7,10" (also "5-" to the end, "-3" from the start) into sorted 1-based pages.

    A malformed spec is a UsageError; pages outside 1..n_pages are an InputError.
    """
    selected: set[int] = set()
    parts = [part.strip() for part in spec.split(",")]
    if not spec.strip() or any(not part for part in parts):
        raise UsageError(f"invalid page range {spec!r}", hint="use e.g. --pages 3-7,10")
    for part in parts:
        first, last = _parse_range_part(part, n_pages, spec)
        if first < 1 or last > n_pages:
            raise InputError(_outside_message(part, n_pages))
        selected.update(range(first, last + 1))
    return sorted(selected)


def _parse_range_part(part: str, n_pages: int, spec: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d*)\s*-\s*(\d*)|(\d+)", part)
    if not match or part == "-":
        raise UsageError(f"invalid page range {spec!r}", hint="use e.g. --pages 3-7,10")
    if match.group(3):
        number = int(match.group(3))
        return number, number
    first = int(match.group(1)) if match.group(1) else 1
    last = int(match.group(2)) if match.group(2) else n_pages
    if first > last:
        raise UsageError(f"invalid page range {part!r}: {first} is after {last}")
    if first == 0:
        raise InputError(_outside_message(part, n_pages))
    return first, last


def _outside_message(part: str, n_pages: int) -> str:
    noun = "page" if n_pages == 1 else "pages"
    return f"page range {part} is outside the document ({n_pages} {noun})"


def _select_pages(texts: list[str], spec: str | None, name: str) -> list[Page]:
    if spec is None:
        numbers = list(range(1, len(texts) + 1))
    else:
        try:
            numbers = parse_page_ranges(spec, len(texts))
        except InputError as exc:
            raise InputError(f"{name}: {exc.message}", hint=exc.hint) from None
    return [Page(number, texts[number - 1]) for number in numbers]


# --- text decoding -------------------------------------------------------------------------


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding; never fails.

    Order: BOM (UTF-8/16/32), UTF-16 without BOM (NUL-byte pattern), UTF-8 (tolerating a few
    stray bytes when the rest is clearly UTF-8), then cp1252 with a Latin-1 fallback per byte.
    """
    for bom, encoding in (
        (codecs.BOM_UTF32_LE, "utf-32-le"),
        (codecs.BOM_UTF32_BE, "utf-32-be"),
        (codecs.BOM_UTF8, "utf-8"),
        (codecs.BOM_UTF16_LE, "utf-16-le"),
        (codecs.BOM_UTF16_BE, "utf-16-be"),
    ):
        if data.startswith(bom):
            return data[len(bom) :].decode(encoding, errors="replace")
    utf16 = _guess_utf16(data)
    if utf16:
        return data.decode(utf16, errors="replace")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    replaced = lenient.count("\ufffd")
    multibyte = sum(1 for char in lenient if ord(char) > 0x7F) - replaced
    if multibyte >= 2 * replaced:
        return lenient
    return data.decode("cp1252", errors="_offgrid_latin1")


def _latin1_fallback(error: UnicodeError) -> tuple[str, int]:
    """cp1252 leaves five bytes undefined; read those as Latin-1 instead of failing."""
    assert isinstance(error, UnicodeDecodeError)
    chunk = error.object[error.start : error.end]
    return bytes(chunk).decode("latin-1"), error.end


codecs.register_error("_offgrid_latin1", _latin1_fallback)


def _guess_utf16(data: bytes) -> str | None:
    """Recognise BOM-less UTF-16 by the NUL bytes that ASCII-range text leaves in every pair."""
    sample = data[:4096]
    if len(sample) < 4:
        return None
    pairs = len(sample) // 2
    even_nuls = sample[0 : pairs * 2 : 2].count(0)
    odd_nuls = sample[1 : pairs * 2 : 2].count(0)
    if odd_nuls > 0.3 * pairs and even_nuls < 0.05 * pairs:
        return "utf-16-le"
    if even_nuls > 0.3 * pairs and odd_nuls < 0.05 * pairs:
        return "utf-16-be"
    return None


def _clean_text(text: str) -> str:
    """Normalise newlines, drop control characters, trim trailing spaces and blank runs."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL_CHARS.sub("", text)
    text = _TRAILING_SPACE.sub("\n", text)
    text = _MANY_BLANK_LINES.sub("\n\n", text)
    return text.strip()


# --- HTML ----------------------------------------------------------------------------------

_HTML_SKIP = {"script", "style", "noscript", "template", "svg", "head", "iframe", "object"}
_HTML_BLOCK = {
    "address", "article", "aside", "blockquote", "caption", "dd", "details", "div", "dl", "dt",
    "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6",
    "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tr",
    "ul", "title",
}  # fmt: skip
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)


def decode_html(data: bytes) -> str:
    """Decode HTML bytes using a BOM, then a <meta charset>, then `decode_text`'s guess."""
    if not data.startswith((codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        match = _META_CHARSET.search(data[:4096])
        if match:
            try:
                return data.decode(match.group(1).decode("ascii"), errors="replace")
            except LookupError:
                pass
    return decode_text(data)


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements become paragraph breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_depth = 0
        self._pre_depth = 0
        self._title: list[str] = []
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self._in_title = True
        elif tag in _HTML_SKIP:
            self._skip_depth += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag in _HTML_BLOCK:
            self.parts.append("\n\n")
            if tag == "li":
                self.parts.append("- ")
            if tag == "pre":
                self._pre_depth += 1
        elif tag in ("td", "th"):
            self.parts.append("\t")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag in _HTML_BLOCK:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title":
            self._in_title = False
        elif tag in _HTML_SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in _HTML_BLOCK:
            self.parts.append("\n\n")
            if tag == "pre":
                self._pre_depth = max(0, self._pre_depth - 1)

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self._title.append(data)
        elif self._skip_depth:
            return
        elif self._pre_depth:
            self.parts.append(data)
        else:
            self.parts.append(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        body = "".join(self.parts)
        lines = [line.strip(" ") for line in body.split("\n")]
        body = "\n".join(lines)
        title = " ".join("".join(self._title).split())
        if title and not body.lstrip().startswith(title):
            body = f"{title}\n\n{body}"
        return body


def html_to_text(html: str) -> str:
    """Visible text of an HTML document: no scripts or styles, paragraphs kept apart."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    return _clean_text(parser.text())


# --- PDF -----------------------------------------------------------------------------------


@contextmanager
def _quiet_pypdf(collected: list[str]) -> Iterator[None]:
    """Route pypdf's log records and warnings into `collected` instead of stderr."""

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            collected.append(record.getMessage())

    logger = logging.getLogger("pypdf")
    handler = _Collect(logging.WARNING)
    saved_propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            yield
        collected.extend(str(warning.message) for warning in caught)
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved_propagate


def _load_pdf(name: str, data: bytes, spec: str | None, password: str | None) -> Document:
    from pypdf.errors import DependencyError

    collected: list[str] = []
    with _quiet_pypdf(collected):
        try:
            reader = _open_pdf(name, data)
            _unlock(reader, name, password)
            n_pages = _count_pages(reader, name)
            numbers = list(range(1, n_pages + 1)) if spec is None else None
            if numbers is None:
                try:
                    numbers = parse_page_ranges(spec or "", n_pages)
                except InputError as exc:
                    raise InputError(f"{name}: {exc.message}") from None
            pages = [Page(number, _page_text(reader, number, collected)) for number in numbers]
        except DependencyError:
            raise _crypto_missing(name) from None
    if not any(page.text for page in pages):
        raise InputError(
            f"{name} has no extractable text (a scan or images only?)",
            hint=f"read a page image with:  offgrid see {name} --page {numbers[0]}",
        )
    return Document(name, pages, collected)


def _open_pdf(name: str, data: bytes):  # -> pypdf.PdfReader
    from pypdf import PdfReader

    try:
        return PdfReader(io.BytesIO(data), strict=False)
    except Exception as exc:  # pypdf raises many kinds on malformed input
        raise _corrupt(name, exc) from exc


def _corrupt(name: str, exc: BaseException) -> InputError:
    detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return InputError(f"{name} is not a readable PDF (corrupt or truncated): {detail}")


def _crypto_missing(name: str) -> InputError:
    return InputError(
        f"{name} is AES-encrypted, which needs the 'cryptography' package",
        hint=CRYPTO_PIP_LINE,
    )


def _unlock(reader, name: str, password: str | None) -> None:
    """Decrypt an encrypted PDF; an empty user password is tried when none is given."""
    from pypdf.errors import DependencyError

    if not reader.is_encrypted:
        return
    try:
        unlocked = reader.decrypt(password if password is not None else "")
    except DependencyError:
        raise
    except NotImplementedError as exc:
        raise InputError(f"{name} uses an unsupported encryption: {exc}") from None
    except Exception as exc:
        raise _corrupt(name, exc) from exc
    if unlocked:
        return
    if password is None:
        raise InputError(f"{name} is encrypted", hint="pass its password with --password")
    raise InputError(f"wrong password for {name}")


def _count_pages(reader, name: str) -> int:
    try:
        n_pages = len(reader.pages)
    except Exception as exc:
        raise _corrupt(name, exc) from exc
    if n_pages == 0:
        raise InputError(f"{name} has no pages")
    return n_pages


def _page_text(reader, number: int, collected: list[str]) -> str:
    """Text of one page; a page pypdf cannot parse becomes empty (noted in warnings)."""
    from pypdf.errors import DependencyError

    try:
        text = reader.pages[number - 1].extract_text() or ""
    except DependencyError:
        raise
    except Exception as exc:
        collected.append(f"page {number}: {type(exc).__name__}: {exc}")
        return ""
    return _clean_text(text)
