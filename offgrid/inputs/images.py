"""Images in: read, verify, orient, downscale, encode; a PDF page or a camera photo as an image.

Everything returns a `PreparedImage`: PNG or JPEG bytes that libmtmd's decoder (stb_image,
which cannot read WebP) accepts, already rotated per EXIF and no larger than `max_side`.
Errors are `InputError`s with one line that names the input.
"""

from __future__ import annotations

import base64
import io
import shutil
import subprocess
import sys
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from offgrid.errors import EngineMissingError, InputError

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_MAX_SIDE = 1024
STDIN = "-"
JPEG_QUALITY = 90
JPEG_DRAFT_FACTOR = 64  # draft() decodes a JPEG at down to 1/8 a side: 1/64 of the pixels
PDF_RENDER_DPI = 150
CAMERA_TIMEOUT_S = 60


@dataclass(frozen=True)
class PreparedImage:
    """An encoded image ready for the engine, and where it came from."""

    data: bytes
    mime: str
    width: int
    height: int
    source: str

    def data_uri(self) -> str:
        """The image as a `data:` URI (what the mtmd chat handler takes as an image_url)."""
        return f"data:{self.mime};base64,{base64.b64encode(self.data).decode('ascii')}"


def read_image_bytes(spec: str | Path, stdin: BinaryIO | None = None) -> tuple[bytes, str]:
    """The raw bytes of `spec` (a path, or "-" for stdin) and a name for messages."""
    if str(spec) == STDIN:
        stream = stdin if stdin is not None else sys.stdin.buffer
        data = stream.read()
        if not data:
            raise InputError("no image on stdin")
        return data, "<stdin>"
    path = Path(spec).expanduser()
    if not path.exists():
        raise InputError(f"image not found: {spec}")
    if path.is_dir():
        raise InputError(f"{spec} is a directory, not an image")
    try:
        return path.read_bytes(), str(spec)
    except OSError as exc:
        raise InputError(f"cannot read {spec}: {exc.strerror or exc}") from exc


def _pillow() -> Any:
    """The PIL package, or the pip line that installs it."""
    try:
        import PIL.Image
        import PIL.ImageOps
    except ImportError:
        raise EngineMissingError("reading images needs Pillow, which is not installed",
                                 hint="pip install 'offgrid[see]'   (or: pip install pillow)") from None
    return PIL


def decode_image(data: bytes, name: str, max_side: int | None = None) -> Image.Image:
    """Decode and fully load an image; not-an-image and truncated files are InputErrors.

    With *max_side*, a JPEG is decoded at a reduced scale (libjpeg's DCT scaling, down to 1/8
    a side) no smaller than that: a 108 or 200 MP phone photo then costs a few MB instead of
    hundreds, and Pillow's pixel limit (a decompression-bomb guard) applies to what is really
    decoded. Pillow's size warning never reaches the terminal.
    """
    pil = _pillow()
    Image, UnidentifiedImageError = pil.Image, pil.UnidentifiedImageError
    scaled = max_side is not None and data[:3] == b"\xff\xd8\xff"
    limit = Image.MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            if scaled and limit:
                Image.MAX_IMAGE_PIXELS = limit * JPEG_DRAFT_FACTOR
            with Image.open(io.BytesIO(data)) as probe:
                probe.verify()
            image = Image.open(io.BytesIO(data))
            if scaled:
                image.draft(image.mode, (max_side, max_side))
            image.load()
    except UnidentifiedImageError as exc:
        raise InputError(f"{name} is not an image Pillow can read (JPEG, PNG, WebP, ...)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name} is a damaged or truncated image ({_short(exc)})") from exc
    except Image.DecompressionBombError as exc:
        raise InputError(f"{name} is too large to decode safely ({_short(exc)})") from exc
    finally:
        Image.MAX_IMAGE_PIXELS = limit
    return image


def prepare_image(
    data: bytes, name: str, max_side: int = DEFAULT_MAX_SIDE
) -> PreparedImage:
    """Orient per EXIF, downscale so the longest side is at most `max_side`, encode PNG/JPEG."""
    if max_side < 1:
        raise InputError(f"longest image side must be at least 1 pixel, got {max_side}")
    image = decode_image(data, name, max_side)
    was_jpeg = image.format == "JPEG"
    image = _pillow().ImageOps.exif_transpose(image)
    if max(image.size) > max_side:
        image.thumbnail((max_side, max_side), _pillow().Image.Resampling.LANCZOS)
    return _encode(image, name, as_jpeg=was_jpeg)


def load_image(
    spec: str | Path, *, stdin: BinaryIO | None = None, max_side: int = DEFAULT_MAX_SIDE
) -> PreparedImage:
    """Read, verify and prepare the image at `spec` ("-" reads stdin)."""
    data, name = read_image_bytes(spec, stdin)
    return prepare_image(data, name, max_side)


def is_pdf(spec: str | Path) -> bool:
    """True for a path that names a PDF (by suffix, or by its first bytes)."""
    path = Path(spec).expanduser()
    if str(spec) == STDIN or not path.is_file():
        return False
    if path.suffix.lower() == ".pdf":
        return True
    with path.open("rb") as fh:
        return fh.read(5) == b"%PDF-"


def load_input(
    spec: str | Path,
    *,
    page: int | None = None,
    password: str | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
    stdin: BinaryIO | None = None,
) -> PreparedImage:
    """An image file, "-" (stdin), or a PDF's page *page* (default 1), ready for the engine."""
    if is_pdf(spec):
        return pdf_page_image(spec, page or 1, password, max_side)
    data, name = read_image_bytes(spec, stdin)
    if data[:5] == b"%PDF-":
        raise InputError(f"{name} is a PDF: give its file name (with --page N), not stdin")
    return prepare_image(data, name, max_side)


def pdf_page_image(
    path: str | Path,
    page: int,
    password: str | None = None,
    max_side: int = DEFAULT_MAX_SIDE,
) -> PreparedImage:
    """Page `page` (1-based) of a PDF as an image.

    Renders with `pdftoppm` (poppler) when it is on PATH, since that shows the page as printed;
    otherwise takes the largest image embedded in the page, which is the whole page for a scan.
    """
    path = Path(path).expanduser()
    name = f"{path.name} page {page}"
    page_count = _pdf_page_count(path, password)
    if not 1 <= page <= page_count:
        raise InputError(f"{path.name} has {page_count} page{'s' * (page_count != 1)}; page {page} does not exist")
    if shutil.which("pdftoppm"):
        data = _render_with_pdftoppm(path, page, password)
    else:
        data = _largest_embedded_image(path, page, password)
    return prepare_image(data, name, max_side)


def take_photo(camera_id: int = 0, timeout: float = CAMERA_TIMEOUT_S) -> bytes:
    """Take a JPEG photo with Termux:API's `termux-camera-photo` and return its bytes."""
    from offgrid.device import termux

    with tempfile.TemporaryDirectory(prefix="offgrid-camera-") as tmp:
        return termux.take_photo(Path(tmp) / "photo.jpg", camera_id, timeout).read_bytes()


def _encode(image: Image.Image, name: str, as_jpeg: bool) -> PreparedImage:
    buffer = io.BytesIO()
    if as_jpeg and image.mode in ("RGB", "L"):
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
        mime = "image/jpeg"
    else:
        if image.mode not in ("RGB", "RGBA", "L", "LA"):
            image = image.convert("RGBA" if "A" in image.getbands() or "transparency" in image.info else "RGB")
        image.save(buffer, format="PNG")
        mime = "image/png"
    return PreparedImage(buffer.getvalue(), mime, image.width, image.height, name)


def _open_pdf(path: Path, password: str | None):
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not path.exists():
        raise InputError(f"PDF not found: {path}")
    try:
        reader = PdfReader(path)
        if reader.is_encrypted and not reader.decrypt(password or ""):
            raise InputError(
                f"{path.name} is password-protected" + (" and the password is wrong" if password else ""),
                hint=None if password else "give the password with --password",
            )
        return reader
    except InputError:
        raise
    except (PdfReadError, OSError, ValueError) as exc:
        raise InputError(f"{path.name} is not a readable PDF ({_short(exc)})") from exc


def _pdf_page_count(path: Path, password: str | None) -> int:
    return len(_open_pdf(path, password).pages)


def _largest_embedded_image(path: Path, page: int, password: str | None) -> bytes:
    reader = _open_pdf(path, password)
    try:
        images = list(reader.pages[page - 1].images)
    except Exception as exc:  # pypdf raises many types on odd image streams
        raise InputError(f"cannot extract the images of {path.name} page {page} ({_short(exc)})") from exc
    if not images:
        raise InputError(
            f"{path.name} page {page} has no embedded image to look at, and pdftoppm is not installed to render it",
            hint="pkg install poppler (or apt install poppler-utils), or use `offgrid summarize` for text PDFs",
        )
    largest = max(images, key=lambda found: found.image.width * found.image.height if found.image else 0)
    if largest.image is None:
        raise InputError(f"cannot decode the image on {path.name} page {page}")
    buffer = io.BytesIO()
    largest.image.save(buffer, format="PNG")
    return buffer.getvalue()


def _render_with_pdftoppm(path: Path, page: int, password: str | None) -> bytes:
    with tempfile.TemporaryDirectory(prefix="offgrid-pdf-") as tmp:
        prefix = Path(tmp) / "page"
        command = ["pdftoppm", "-f", str(page), "-l", str(page), "-r", str(PDF_RENDER_DPI), "-png", "-singlefile"]
        if password:
            command += ["-upw", password]
        result = subprocess.run([*command, str(path), str(prefix)], capture_output=True, check=False)
        output = prefix.with_suffix(".png")
        if result.returncode != 0 or not output.exists():
            detail = result.stderr.decode(errors="replace").strip().splitlines()
            raise InputError(f"pdftoppm could not render {path.name} page {page}" + (f": {detail[-1]}" if detail else ""))
        return output.read_bytes()


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
