"""documents.load: PDFs (generated here), text encodings, HTML, stdin, and every input error."""

from __future__ import annotations

import io
import logging
import random
from pathlib import Path

import pytest

from offgrid.inputs import documents
from offgrid.inputs.documents import Page, decode_text, html_to_text, load, parse_page_ranges
from offgrid.errors import InputError, UsageError
from tests.pdfs import pdf_bytes, write_pdf

PAGES = [f"This is page {n}.\nIt talks about topic number {n}." for n in range(1, 6)]


@pytest.fixture(scope="module")
def five_pages(tmp_path_factory) -> Path:
    return write_pdf(tmp_path_factory.mktemp("pdf") / "five.pdf", PAGES)


# --- PDF -----------------------------------------------------------------------------------


def test_pdf_pages_are_numbered_and_extracted(five_pages):
    document = load(five_pages)
    assert document.name == str(five_pages)
    assert [page.number for page in document.pages] == [1, 2, 3, 4, 5]
    assert "page 3" in document.pages[2].text
    assert "topic number 5" in document.pages[4].text
    assert document.pages[0].text.splitlines() == ["This is page 1.", "It talks about topic number 1."]


def test_pdf_page_ranges_keep_original_numbers(five_pages):
    document = load(five_pages, pages="2-3,5")
    assert [page.number for page in document.pages] == [2, 3, 5]
    assert "page 5" in document.pages[-1].text


def test_pdf_page_range_outside_document(five_pages):
    with pytest.raises(InputError) as caught:
        load(five_pages, pages="4-9")
    assert "outside" in caught.value.message and "5 pages" in caught.value.message
    assert "\n" not in caught.value.message


def test_pdf_from_stdin_is_detected_by_magic():
    document = load("-", stdin=io.BytesIO(pdf_bytes(["hello from a pipe"])))
    assert document.name == documents.STDIN_NAME
    assert document.pages == [Page(1, "hello from a pipe")]


def test_blank_pages_stay_numbered(tmp_path):
    document = load(write_pdf(tmp_path / "gap.pdf", ["first", None, "third"]))
    assert [(page.number, page.text) for page in document.pages] == [(1, "first"), (2, ""), (3, "third")]
    assert document.text == "first\n\nthird"


def test_pdf_without_text_suggests_see(tmp_path):
    path = write_pdf(tmp_path / "scan.pdf", [None, None])
    with pytest.raises(InputError) as caught:
        load(path, pages="2")
    assert "no extractable text" in caught.value.message
    assert caught.value.hint is not None and f"offgrid see {path} --page 2" in caught.value.hint


def test_encrypted_pdf_needs_password(tmp_path):
    path = write_pdf(tmp_path / "locked.pdf", ["the secret clause"], password="s3cret")
    with pytest.raises(InputError) as caught:
        load(path)
    assert "encrypted" in caught.value.message and "--password" in (caught.value.hint or "")
    with pytest.raises(InputError, match="wrong password"):
        load(path, password="nope")
    assert load(path, password="s3cret").pages[0].text == "the secret clause"


def test_encrypted_pdf_with_empty_user_password_opens_without_one(tmp_path):
    path = write_pdf(tmp_path / "owner-only.pdf", ["readable"], password="")
    assert load(path).pages[0].text == "readable"


class _FakeAES:
    """Stands in for pypdf's AES while *writing*, so the test needs no cryptography package."""

    def __init__(self, key: bytes) -> None:
        pass

    def encrypt(self, data: bytes) -> bytes:
        pad = 16 - len(data) % 16
        return bytes(16) + data + bytes([pad]) * pad


def test_aes_pdf_without_cryptography_says_what_to_install(monkeypatch):
    import pypdf._encryption as encryption
    from pypdf._crypt_providers import _fallback

    monkeypatch.setattr(encryption, "CryptAES", _FakeAES)
    data = pdf_bytes(["aes text"], password="pw", algorithm="AES-128")
    monkeypatch.setattr(encryption, "CryptAES", _fallback.CryptAES)  # as without cryptography
    with pytest.raises(InputError) as caught:
        load("-", stdin=io.BytesIO(data), password="pw")
    assert "cryptography" in caught.value.message
    assert caught.value.hint == documents.CRYPTO_PIP_LINE


def test_aes_256_pdf_opens_with_its_password():
    # offgrid depends on pypdf[crypto], so AES PDFs (what most tools write today) just work.
    data = pdf_bytes(["the AES clause"], password="pw", algorithm="AES-256")
    with pytest.raises(InputError, match="wrong password"):
        load("-", stdin=io.BytesIO(data), password="no")
    assert load("-", stdin=io.BytesIO(data), password="pw").pages[0].text == "the AES clause"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:-60],
        lambda data: b"%PDF-1.7\nthis is not really a pdf\n",
        lambda data: data.replace(b"xref", b"xxxx").replace(b"/Root", b"/Rooo"),
    ],
    ids=["half", "tail-cut", "garbage", "no-xref-no-root"],
)
def test_corrupt_pdf_is_one_line_input_error(tmp_path, mangle):
    path = tmp_path / "bad.pdf"
    path.write_bytes(mangle(pdf_bytes(PAGES)))
    with pytest.raises(InputError) as caught:
        load(path)
    assert str(path) in caught.value.message and "\n" not in caught.value.message


def test_random_damage_never_escapes_as_another_exception():
    import random

    rng = random.Random(5)
    original = pdf_bytes(PAGES[:2])
    for _ in range(60):
        damaged = bytearray(original)
        for _ in range(15):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        try:
            load("-", stdin=io.BytesIO(bytes(damaged)))
        except InputError:
            pass


def test_pypdf_warnings_do_not_reach_stderr(tmp_path, capfd):
    data = pdf_bytes(PAGES[:2])
    # A wrong xref offset makes pypdf log a warning and repair the file.
    start = data.rindex(b"startxref")
    damaged = data[:start] + b"startxref\n9\n%%EOF\n"
    document = load("-", stdin=io.BytesIO(damaged))
    assert "page 2" in document.pages[1].text
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert document.warnings, "the repair warning is kept for --debug"
    assert logging.getLogger("pypdf").propagate is True


def test_pdf_suffix_without_magic_is_corrupt(tmp_path):
    path = tmp_path / "fake.pdf"
    path.write_text("just text")
    with pytest.raises(InputError, match="not a readable PDF"):
        load(path)


# --- page ranges ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [("3-7,10", [3, 4, 5, 6, 7, 10]), ("1", [1]), (" 2 , 1 ", [1, 2]), ("8-", [8, 9, 10]),
     ("-2", [1, 2]), ("2-4,3-5", [2, 3, 4, 5]), ("10-10", [10])],
)  # fmt: skip
def test_parse_page_ranges(spec, expected):
    assert parse_page_ranges(spec, 10) == expected


@pytest.mark.parametrize("spec", ["", "a", "1-2-3", "3-1", ",", "1,,2", "-", "1.5"])
def test_malformed_page_ranges_are_usage_errors(spec):
    with pytest.raises(UsageError):
        parse_page_ranges(spec, 10)


@pytest.mark.parametrize("spec", ["0", "11", "9-12", "0-2"])
def test_page_ranges_outside_are_input_errors(spec):
    with pytest.raises(InputError, match="outside the document"):
        parse_page_ranges(spec, 10)


# --- text and encodings --------------------------------------------------------------------


def test_text_file_is_one_page(tmp_path):
    path = tmp_path / "notes.md"
    path.write_text("# Title\r\n\r\nSome *markdown* text.\r\n\r\n\r\n\r\nMore.\n", encoding="utf-8")
    document = load(path)
    assert document.pages == [Page(1, "# Title\n\nSome *markdown* text.\n\nMore.")]


def test_form_feeds_split_pages_like_pdftotext(tmp_path):
    data = b"one\n\x0ctwo\n\x0cthree\n\x0c"
    document = load("-", stdin=io.BytesIO(data))
    assert [(page.number, page.text) for page in document.pages] == [(1, "one"), (2, "two"), (3, "three"), (4, "")]
    assert [page.number for page in load("-", stdin=io.BytesIO(data), pages="2-3").pages] == [2, 3]
    with pytest.raises(InputError, match="outside"):
        load("-", stdin=io.BytesIO(b"only one page"), pages="2")


SAMPLE = "Façade, naïve café — 5 € «quoted» ünïcödé."


@pytest.mark.parametrize(
    "data",
    [
        SAMPLE.encode("utf-8"),
        b"\xef\xbb\xbf" + SAMPLE.encode("utf-8"),
        SAMPLE.encode("utf-16"),  # with BOM
        SAMPLE.encode("utf-16-le"),
        SAMPLE.encode("utf-16-be"),
        SAMPLE.encode("utf-32"),
        SAMPLE.encode("cp1252"),
    ],
    ids=["utf8", "utf8-bom", "utf16-bom", "utf16le", "utf16be", "utf32-bom", "cp1252"],
)
def test_encodings_are_detected(data):
    assert decode_text(data) == SAMPLE


def test_latin1_bytes_undefined_in_cp1252_do_not_crash():
    assert decode_text(b"caf\xe9 \x81\x8d\x90") == "café \x81\x8d\x90"


def test_a_stray_byte_in_utf8_keeps_utf8():
    data = "naïve café — déjà vu".encode() + b" \xff end"
    assert decode_text(data) == "naïve café — déjà vu \ufffd end"


def test_stray_bytes_and_controls_in_a_file(tmp_path):
    path = tmp_path / "odd.txt"
    path.write_bytes(b"ok \x00\x07text\xff\xfe\x80 here")
    text = load(path).pages[0].text
    assert text.startswith("ok text") and text.endswith(" here")


# --- HTML ----------------------------------------------------------------------------------

HTML = """<!DOCTYPE html><html><head><title>Invoice 42</title>
<style>p { color: red }</style><script>alert("x")</script></head>
<body><h1>Invoice&nbsp;42</h1><p>Total:   <b>1&#44;200 &euro;</b>
due <i>soon</i>.</p><p>Second<br>line</p><ul><li>alpha</li><li>beta</li></ul>
<noscript>enable js</noscript><pre>  keep   spacing</pre></body></html>"""


def test_html_drops_markup_scripts_and_styles():
    text = html_to_text(HTML)
    assert "alert" not in text and "color" not in text and "enable js" not in text
    assert "<" not in text
    assert "Total: 1,200 € due soon." in text
    assert "\n\nSecond\nline\n\n" in text
    assert "- alpha\n\n- beta" in text
    assert "keep   spacing" in text  # <pre> keeps inner spacing
    assert text.startswith("Invoice 42")


def test_html_detected_by_suffix_or_content(tmp_path):
    path = tmp_path / "page.htm"
    path.write_text("<p>one</p><p>two</p>", encoding="utf-8")
    assert load(path).pages[0].text == "one\n\ntwo"
    assert "Invoice 42" in load("-", stdin=io.BytesIO(HTML.encode())).pages[0].text


def test_html_meta_charset_is_honoured():
    data = '<html><head><meta charset="windows-1252"></head><body><p>café</p></body></html>'
    assert load("-", stdin=io.BytesIO(data.encode("cp1252"))).pages[0].text == "café"


# --- errors --------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load(tmp_path / "nope.txt")


def test_directory(tmp_path):
    with pytest.raises(InputError, match="directory"):
        load(tmp_path)


@pytest.mark.parametrize("data", [b"", b"  \n\n\t ", b"\x0c\x0c"])
def test_empty_file_and_stdin(tmp_path, data):
    path = tmp_path / "empty.txt"
    path.write_bytes(data)
    with pytest.raises(InputError, match="empty|no text"):
        load(path)
    with pytest.raises(InputError) as caught:
        load("-", stdin=io.BytesIO(data))
    assert documents.STDIN_NAME in caught.value.message


def test_images_and_audio_point_to_the_right_command(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(64))
    with pytest.raises(InputError) as caught:
        load(path)
    assert "image" in caught.value.message and "offgrid see" in (caught.value.hint or "")


@pytest.mark.parametrize("data", [
    b"GGUF\x03\x00\x00\x00" + bytes(range(256)) * 8,  # a model file
    random.Random(7).randbytes(5000),  # garbage on stdin
])
def test_binary_data_is_not_a_document(data):
    with pytest.raises(InputError, match="looks like binary data"):
        documents.parse("<stdin>", data)


def test_text_with_a_few_control_bytes_is_still_text():
    text = ("Invoice total 90 EUR, due 1 May.\n" * 40).encode() + b"\x00\x07\x1b"
    assert documents.parse("x.txt", text).pages[0].text.endswith("due 1 May.")
