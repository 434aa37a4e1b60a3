"""Kenyan mobile numbers (`core.phone`): every accepted spelling, rejections, masking."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.core.phone import mask_phone, normalise_phone

ASCII_MSISDN = re.compile(r"254[17][0-9]{8}")
ARABIC_INDIC_12345678 = "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"
FULLWIDTH_345678 = "\uff13\uff14\uff15\uff16\uff17\uff18"


@pytest.mark.parametrize(
    ("raw", "msisdn"),
    [
        # 07… / 01…
        ("0712345678", "254712345678"),
        ("0112345678", "254112345678"),
        # +254…
        ("+254712345678", "254712345678"),
        ("+254112345678", "254112345678"),
        # 254…
        ("254712345678", "254712345678"),
        ("254112345678", "254112345678"),
        # 00254…
        ("00254712345678", "254712345678"),
        ("00254112345678", "254112345678"),
        # nine digits
        ("712345678", "254712345678"),
        ("112345678", "254112345678"),
        # separators: spaces, dashes, parentheses, dots, surrounding whitespace
        ("0712 345 678", "254712345678"),
        ("0712-345-678", "254712345678"),
        ("(0712) 345-678", "254712345678"),
        ("+254 712 345 678", "254712345678"),
        ("+254-712-345-678", "254712345678"),
        ("+254 (712) 345678", "254712345678"),
        ("00 254 712 345 678", "254712345678"),
        ("254.712.345.678", "254712345678"),
        ("  0712345678  ", "254712345678"),
        ("\t0712345678\n", "254712345678"),
        ("712 345 678", "254712345678"),
        ("1-1234-5678", "254112345678"),
        # the sandbox test number
        ("254708374149", "254708374149"),
    ],
)
def test_accepted_spellings(raw: str, msisdn: str) -> None:
    assert normalise_phone(raw) == msisdn


@pytest.mark.parametrize(
    "raw",
    [
        # landlines and other non-mobile prefixes
        "0201234567",
        "020 123 4567",
        "+254201234567",
        "254201234567",
        "0412345678",
        "0812345678",
        "254612345678",
        "+254612345678",
        "00254612345678",
        "612345678",
        # too short / too long
        "",
        "   ",
        "07",
        "071234567",
        "07123456789",
        "2547123456789",
        "25471234567",
        "+2547123456789",
        "71234567",
        "7123456789",
        # letters and stray symbols
        "07123abc78",
        "O712345678",
        "0712345678x",
        "0712/345/678",
        "0712_345_678",
        "+",
        "++254712345678",
        "+00254712345678",
        "0254712345678",
        # other countries
        "+255712345678",
        "+1 712 345 6789",
    ],
)
def test_rejected_numbers(raw: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        normalise_phone(raw)
    assert info.value.code == "invalid_phone"
    assert info.value.param == "phone"


@pytest.mark.parametrize("raw", [None, 712345678, 254712345678, 7.12345678e8, b"0712345678", ["0712345678"], {}])
def test_non_strings_are_rejected(raw: object) -> None:
    with pytest.raises(InvalidRequest) as info:
        normalise_phone(raw)
    assert info.value.code == "invalid_phone"
    assert info.value.param == "phone"


def test_the_error_names_the_given_param() -> None:
    with pytest.raises(InvalidRequest) as info:
        normalise_phone("12", param="customer.phone")
    assert info.value.param == "customer.phone"
    with pytest.raises(InvalidRequest) as info:
        normalise_phone(None, param="customer.phone")
    assert info.value.param == "customer.phone"


@pytest.mark.parametrize(
    "raw", ["07" + ARABIC_INDIC_12345678, "+2547" + ARABIC_INDIC_12345678, "0712" + FULLWIDTH_345678]
)
def test_non_ascii_digits_are_rejected(raw: str) -> None:
    with pytest.raises(InvalidRequest):
        normalise_phone(raw)


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

EIGHT_DIGITS = st.text(alphabet="0123456789", min_size=8, max_size=8)
PREFIX = st.sampled_from(["7", "1"])
SPELLINGS = ["0{n}", "+254{n}", "254{n}", "00254{n}", "{n}"]
SEPARATORS = st.sampled_from(["", "", "", " ", "-", "(", ")", "."])


@st.composite
def spelled(draw: st.DrawFn) -> tuple[str, str]:
    """(a spelling of a number with separators sprinkled in, the MSISDN it stands for)."""
    prefix = draw(PREFIX)
    digits = draw(EIGHT_DIGITS)
    national = prefix + digits
    text = draw(st.sampled_from(SPELLINGS)).format(n=national)
    out = draw(st.sampled_from(["", " ", "  "]))
    for char in text:
        out += char + draw(SEPARATORS)
    return out + draw(st.sampled_from(["", " ", "\t"])), "254" + national


@settings(max_examples=200)
@given(spelled())
def test_every_spelling_of_a_number_normalises_to_the_same_msisdn(case: tuple[str, str]) -> None:
    raw, msisdn = case
    assert normalise_phone(raw) == msisdn


@settings(max_examples=200)
@given(PREFIX, EIGHT_DIGITS)
def test_all_plain_spellings_agree(prefix: str, digits: str) -> None:
    national = prefix + digits
    results = {normalise_phone(spelling.format(n=national)) for spelling in SPELLINGS}
    assert results == {f"254{prefix}{digits}"}


@settings(max_examples=200)
@given(spelled())
def test_normalisation_is_idempotent_and_ascii(case: tuple[str, str]) -> None:
    raw, _ = case
    once = normalise_phone(raw)
    assert normalise_phone(once) == once
    assert ASCII_MSISDN.fullmatch(once)


@settings(max_examples=200)
@given(st.text(max_size=20))
def test_arbitrary_text_either_normalises_or_is_refused_cleanly(raw: str) -> None:
    try:
        result = normalise_phone(raw)
    except InvalidRequest as exc:
        assert exc.code == "invalid_phone"
    else:
        assert normalise_phone(result) == result


@settings(max_examples=200)
@given(PREFIX, EIGHT_DIGITS)
def test_mask_keeps_first_four_and_last_four(prefix: str, digits: str) -> None:
    msisdn = f"254{prefix}{digits}"
    masked = mask_phone(msisdn)
    assert masked == f"{msisdn[:4]}****{msisdn[-4:]}"
    assert masked[:4] == msisdn[:4]
    assert masked[-4:] == msisdn[-4:]
    assert masked[4:-4] == "****"
    assert msisdn not in masked


def test_mask_examples() -> None:
    assert mask_phone("254712345678") == "2547****5678"
    assert mask_phone("254108374149") == "2541****4149"


@pytest.mark.parametrize("short", ["", "1", "2547", "2547123"])
def test_mask_of_something_too_short_hides_everything(short: str) -> None:
    assert mask_phone(short) == "****"
