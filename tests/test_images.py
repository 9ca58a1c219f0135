"""offgrid.inputs.images with Pillow-generated images and PDFs made by Pillow and pypdf."""

from __future__ import annotations

import base64
import io
import os
import stat
import sys
from pathlib import Path

import pytest
from PIL import Image

from offgrid.inputs import images
from offgrid.errors import InputError, OffgridError


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def solid(size=(64, 48), colour=(200, 20, 20), mode="RGB") -> Image.Image:
    return Image.new(mode, size, colour)


def decoded(prepared: images.PreparedImage) -> Image.Image:
    return Image.open(io.BytesIO(prepared.data))


@pytest.mark.parametrize(("fmt", "mime"), [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/png")])
def test_formats_become_png_or_jpeg(tmp_path, fmt, mime):
    path = tmp_path / f"x.{fmt.lower()}"
    path.write_bytes(encode(solid(), fmt))
    prepared = images.load_image(path)
    assert (prepared.mime, prepared.width, prepared.height) == (mime, 64, 48)
    assert decoded(prepared).format == mime.split("/")[1].upper()
    assert prepared.source == str(path)


def test_data_uri_round_trips():
    prepared = images.prepare_image(encode(solid(), "PNG"), "x")
    head, payload = prepared.data_uri().split(",", 1)
    assert head == "data:image/png;base64"
    assert base64.b64decode(payload) == prepared.data


def test_large_photo_is_downscaled_in_memory():
    prepared = images.prepare_image(encode(solid((3000, 1500)), "JPEG"), "big.jpg")
    assert (prepared.width, prepared.height) == (1024, 512)
    small = images.prepare_image(encode(solid((3000, 1500)), "JPEG"), "big.jpg", max_side=300)
    assert (small.width, small.height) == (300, 150)


def test_exif_orientation_is_applied():
    image = solid((80, 40))
    exif = image.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    prepared = images.prepare_image(encode(image, "JPEG", exif=exif), "rotated.jpg")
    assert (prepared.width, prepared.height) == (40, 80)
    assert 0x0112 not in decoded(prepared).getexif()


def test_palette_png_with_transparency_keeps_alpha():
    image = solid(mode="P", colour=3)
    image.info["transparency"] = 3
    prepared = images.prepare_image(encode(image, "PNG", transparency=3), "p.png")
    assert decoded(prepared).mode == "RGBA"


def test_stdin_dash_reads_the_stream():
    prepared = images.load_image("-", stdin=io.BytesIO(encode(solid(), "PNG")))
    assert prepared.source == "<stdin>" and prepared.width == 64


def test_empty_stdin_is_an_input_error():
    with pytest.raises(InputError, match="no image on stdin"):
        images.load_image("-", stdin=io.BytesIO(b""))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="image not found: .*nope.png"):
        images.load_image(tmp_path / "nope.png")


def test_directory_is_not_an_image(tmp_path):
    with pytest.raises(InputError, match="is a directory"):
        images.load_image(tmp_path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("just some text, not pixels")
    with pytest.raises(InputError, match="notes.jpg is not an image"):
        images.load_image(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_truncated_image(tmp_path, fmt):
    data = encode(Image.effect_noise((64, 64), 40).convert("RGB"), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) * 2 // 3])
    with pytest.raises(InputError, match="cut.* is a damaged or truncated image"):
        images.load_image(path)


# --- PDF pages ---------------------------------------------------------------------------


@pytest.fixture
def scanned_pdf(tmp_path) -> Path:
    """Two pages, each one embedded image (what a phone scanner app writes)."""
    path = tmp_path / "scan.pdf"
    first, second = solid((120, 160), (255, 0, 0)), solid((90, 60), (0, 0, 255))
    first.save(path, format="PDF", save_all=True, append_images=[second])
    return path


@pytest.fixture
def no_pdftoppm(monkeypatch):
    monkeypatch.setattr(images.shutil, "which", lambda name: None)


def test_pdf_page_uses_the_embedded_image(scanned_pdf, no_pdftoppm):
    page = images.pdf_page_image(scanned_pdf, 2)
    assert (page.width, page.height) == (90, 60)
    assert decoded(page).convert("RGB").getpixel((5, 5))[2] > 200
    assert page.source == "scan.pdf page 2"


def test_pdf_page_picks_the_largest_image(tmp_path, no_pdftoppm):
    from pypdf import PdfReader, PdfWriter

    big, logo = tmp_path / "big.pdf", tmp_path / "logo.pdf"
    solid((300, 200), (0, 255, 0)).save(big, format="PDF")
    solid((20, 20), (255, 0, 0)).save(logo, format="PDF")
    writer = PdfWriter()
    writer.add_page(PdfReader(logo).pages[0])
    page = writer.pages[0]
    page.merge_page(PdfReader(big).pages[0])
    out = tmp_path / "mixed.pdf"
    writer.write(out)
    prepared = images.pdf_page_image(out, 1)
    assert (prepared.width, prepared.height) == (300, 200)


def test_pdf_page_out_of_range(scanned_pdf, no_pdftoppm):
    with pytest.raises(InputError, match="scan.pdf has 2 pages; page 3 does not exist"):
        images.pdf_page_image(scanned_pdf, 3)


def test_text_pdf_without_images_or_renderer(tmp_path, no_pdftoppm):
    from pypdf import PdfWriter

    writer = PdfWriter()
    writer.add_blank_page(width=200, height=200)
    path = tmp_path / "text.pdf"
    writer.write(path)
    with pytest.raises(InputError, match="no embedded image .* pdftoppm is not installed") as caught:
        images.pdf_page_image(path, 1)
    assert "poppler" in caught.value.hint


def test_encrypted_pdf_needs_the_password(scanned_pdf, tmp_path, no_pdftoppm):
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(scanned_pdf))
    writer.encrypt("s3cret", algorithm="RC4-128")
    locked = tmp_path / "locked.pdf"
    writer.write(locked)
    with pytest.raises(InputError, match="locked.pdf is password-protected$"):
        images.pdf_page_image(locked, 1)
    with pytest.raises(InputError, match="password is wrong"):
        images.pdf_page_image(locked, 1, password="guess")
    assert images.pdf_page_image(locked, 1, password="s3cret").width == 120


def test_not_a_pdf(tmp_path, no_pdftoppm):
    path = tmp_path / "fake.pdf"
    path.write_text("hello")
    with pytest.raises(InputError, match="fake.pdf is not a readable PDF"):
        images.pdf_page_image(path, 1)


def _fake_tool(folder: Path, name: str, body: str) -> None:
    script = folder / name
    script.write_text(f"#!{sys.executable}\nimport sys\nfrom PIL import Image\n{body}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_pdftoppm_renders_the_page_when_present(scanned_pdf, tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # the fake renderer draws a page whose width encodes the page number it was asked for
    _fake_tool(bin_dir, "pdftoppm", "args = sys.argv\n"
               "page = int(args[args.index('-f') + 1])\n"
               "Image.new('RGB', (100 + page, 50), 'white').save(args[-1] + '.png')")
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    assert images.pdf_page_image(scanned_pdf, 2).width == 102


def test_camera_photo_with_termux_api(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_tool(bin_dir, "termux-camera-photo", "assert sys.argv[1:3] == ['-c', '1']\n"
               "Image.new('RGB', (40, 30), 'red').save(sys.argv[3], format='JPEG')")
    monkeypatch.setenv("PATH", str(bin_dir))
    photo = images.take_photo(camera_id=1)
    assert images.prepare_image(photo, "camera").mime == "image/jpeg"


def test_camera_failure_and_missing_tool(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv("TERMUX_VERSION", raising=False)
    monkeypatch.setenv("PREFIX", "/usr")
    with pytest.raises(OffgridError, match="needs Termux") as caught:
        images.take_photo()
    assert "image file" in caught.value.hint
    _fake_tool(tmp_path, "termux-camera-photo", "sys.stderr.write('Permission denied\\n'); sys.exit(1)")
    with pytest.raises(OffgridError, match="termux-camera-photo` failed: Permission denied"):
        images.take_photo()


def test_a_very_large_phone_photo_is_read_at_a_reduced_scale(monkeypatch):
    """A 108/200 MP JPEG printed Pillow's DecompressionBombWarning or was refused as a
    bomb; JPEGs are now decoded at a reduced scale, where the pixel limit really applies.
    (Scaled down: the limit is lowered instead of generating a 200 MP photo.)"""
    import warnings

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000_000)
    photo = encode(solid((3000, 2000)), "JPEG")  # 6 MP: 3x Pillow's bomb error threshold
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing may reach the terminal
        prepared = images.prepare_image(photo, "huge.jpg", max_side=512)
    assert (prepared.width, prepared.height) == (512, 341)
    assert Image.MAX_IMAGE_PIXELS == 1_000_000  # the guard is restored
    with pytest.raises(InputError, match="too large to decode safely"):  # a PNG decodes fully
        images.prepare_image(encode(solid((3000, 2000)), "PNG"), "huge.png", max_side=512)
