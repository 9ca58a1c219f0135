"""grounded.verify: extracted values are checked against the document's text."""

from __future__ import annotations

from offgrid.grounded.prompts import NOT_MENTIONED
from offgrid.grounded.verify import DocumentText, verify

INVOICE = {1: "INVOICE 2026-117\nTotal due: 4 500 €\nDue date: 15 March 2026\n"
              "A late penalty of 5 % per month applies.\nPayable to Acme Ltd."}


def test_the_invoice_values_are_found_in_any_format() -> None:
    text = DocumentText(INVOICE)
    for value in ("4 500 €", "4,500 EUR", "€4500 (p. 1)", "15 March 2026", "March 15, 2026",
                  "2026-03-15", "5 % per month", "5% per month", "**Acme Ltd**"):
        assert text.contains(value), value


def test_invented_values_are_not() -> None:
    text = DocumentText(INVOICE)
    for value in ('="#">', "GB123456789", "4 600 €", "16 March 2026", "10% per month", ""):
        assert not text.contains(value), value


def test_verify_keeps_what_the_text_has_and_says_so() -> None:
    values = {"total amount": "4 500 € (p. 1)", "due date": "15 March 2026",
              "late penalty": "5 % per month; 7 % per month", "VAT number": '="#">',
              "IBAN": NOT_MENTIONED}
    checked, verified = verify(values, INVOICE)
    assert checked == {"total amount": "4 500 € (p. 1)", "due date": "15 March 2026",
                       "late penalty": "5 % per month", "VAT number": NOT_MENTIONED,
                       "IBAN": NOT_MENTIONED}
    assert verified == {"total amount": True, "due date": True, "late penalty": True,
                        "VAT number": False, "IBAN": None}
