"""Identifier checks: NHI institution codes, national IDs and resident certificate numbers."""

from __future__ import annotations

import re

from flask_babel import lazy_gettext as _l
from wtforms.validators import ValidationError

# Letter values of the first character of a 身分證字號 / 居留證號.
_LETTER_VALUES = {
    "A": 10, "B": 11, "C": 12, "D": 13, "E": 14, "F": 15, "G": 16, "H": 17, "I": 34,
    "J": 18, "K": 19, "L": 20, "M": 21, "N": 22, "O": 35, "P": 23, "Q": 24, "R": 25,
    "S": 26, "T": 27, "U": 28, "V": 29, "W": 32, "X": 30, "Y": 31, "Z": 33,
}  # fmt: skip
_WEIGHTS = (1, 9, 8, 7, 6, 5, 4, 3, 2, 1, 1)

_NATIONAL_RE = re.compile(r"^[A-Z][12]\d{8}$")
_RESIDENT_NEW_RE = re.compile(r"^[A-Z][89]\d{8}$")  # 2021 format: like an ID, 2nd digit 8/9
_RESIDENT_OLD_RE = re.compile(r"^[A-Z][A-D]\d{8}$")  # before 2021: second char a letter
_NHI_RE = re.compile(r"^\d{10}$")


def normalize_id(value: str | None) -> str:
    """Upper-case and strip a personal ID as typed (full-width letters included)."""
    if value is None:
        return ""
    import unicodedata

    return unicodedata.normalize("NFKC", str(value)).strip().upper()


def _checksum_ok(first: str, digits: list[int]) -> bool:
    code = _LETTER_VALUES[first]
    values = [code // 10, code % 10, *digits]
    return sum(w * v for w, v in zip(_WEIGHTS, values, strict=True)) % 10 == 0


def is_valid_personal_id(value: str | None) -> bool:
    """True for a national ID or a (new or old format) resident certificate number."""
    value = normalize_id(value)
    if _NATIONAL_RE.match(value) or _RESIDENT_NEW_RE.match(value):
        return _checksum_ok(value[0], [int(c) for c in value[1:]])
    if _RESIDENT_OLD_RE.match(value):
        # The second letter counts by the last digit of its letter value (A=10 → 0).
        second = _LETTER_VALUES[value[1]] % 10
        return _checksum_ok(value[0], [second, *(int(c) for c in value[2:])])
    return False


def personal_id_check_digit(prefix: str) -> str:
    """The check digit that completes a 9-character national-ID prefix (for demo data)."""
    if (
        len(prefix) == 9
        and prefix[0] in _LETTER_VALUES
        and prefix[1:].isdigit()
        and prefix[1] in "1289"
    ):
        code = _LETTER_VALUES[prefix[0]]
        values = [code // 10, code % 10, *(int(c) for c in prefix[1:])]
        return str(-sum(w * v for w, v in zip(_WEIGHTS, values, strict=False)) % 10)
    for digit in "0123456789":
        if is_valid_personal_id(prefix + digit):
            return digit
    raise ValueError(prefix)


def mask_personal_id(value: str | None) -> str:
    """A12****789: enough to tell people apart on a list, not enough to identify them."""
    value = normalize_id(value)
    if len(value) != 10:
        return "*" * len(value)
    return f"{value[:3]}****{value[7:]}"


def is_valid_nhi_code(value: str | None) -> bool:
    """An NHI institution code (醫事機構代碼) is exactly 10 ASCII digits, not all zero."""
    value = (value or "").strip()
    return bool(_NHI_RE.match(value)) and value != "0" * 10


class PersonalId:
    """WTForms validator for 身分證字號 / 居留證號 (checksum-validated)."""

    message = _l(
        "Invalid national ID or resident certificate number: check the letters and the check digit."
    )

    def __call__(self, form, field):
        field.data = normalize_id(field.data)
        if not is_valid_personal_id(field.data):
            raise ValidationError(self.message)


class NhiCode:
    """WTForms validator for the 10-digit NHI institution code."""

    message = _l("The NHI institution code must be exactly 10 digits.")

    def __call__(self, form, field):
        field.data = (field.data or "").strip()
        if not is_valid_nhi_code(field.data):
            raise ValidationError(self.message)


#: The largest value of a 4-byte SQL integer (every id column of this schema).
MAX_INT4 = 2**31 - 1


def ascii_int(text: str | None, low: int = 0, high: int = MAX_INT4) -> int | None:
    """`text` as an int when it is ASCII digits within [low, high], else None."""
    if not isinstance(text, str) or not text.isascii() or not text.isdigit() or len(text) > 12:
        return None
    value = int(text)
    return value if low <= value <= high else None
