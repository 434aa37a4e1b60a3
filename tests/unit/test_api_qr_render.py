"""mpesa_bridge/qr.py: the QR codes of URLs read back to the same URL with a real decoder; SVGs are well-formed."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from mpesa_bridge.core.errors import InvalidRequest
from mpesa_bridge.qr import (
    DEFAULT_BORDER,
    MAX_PNG_SIDE,
    MAX_SCALE,
    MAX_TEXT_LENGTH,
    content_type,
    qr_image,
    qr_png,
    qr_response,
    qr_svg,
)
from tests.fixtures.qr import decode_png, png_size

URLS = [
    "https://pay.example.co.ke/l/plk_01jz5m3k6q8w2d1c4b7n9p0r5t",
    "https://bridge.example.com/pay/cs_test_01jz5m3k6q8w2d1c4b7n9p0r5t?lang=sw&theme=dark",
    "http://127.0.0.1:8000/l/duka-la-mama",
    "https://example.com/" + "a" * 900,  # a long one: a large symbol still reads
]

SVG = "{http://www.w3.org/2000/svg}svg"


@pytest.mark.parametrize("url", URLS)
def test_the_png_of_a_url_decodes_to_the_url(url: str) -> None:
    png = qr_png(url)

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert decode_png(png) == [url]


@pytest.mark.parametrize("scale", [1, 3, 8, 20])
def test_every_scale_reads_and_sizes_the_image(scale: int) -> None:
    url = URLS[0]
    png = qr_png(url, scale)

    width, height = png_size(png)
    assert width == height
    assert width % scale == 0
    modules = width // scale - 2 * DEFAULT_BORDER
    assert (modules - 17) % 4 == 0  # a QR symbol is 17 + 4 * version modules wide
    if scale >= 2:  # one pixel per module is below what most decoders (and cameras) take
        assert decode_png(png) == [url]


@pytest.mark.parametrize("error", ["L", "M", "Q", "H"])
def test_every_error_correction_level_reads(error: str) -> None:
    assert decode_png(qr_png(URLS[1], 4, error=error)) == [URLS[1]]  # type: ignore[arg-type]


def test_a_higher_error_level_makes_a_larger_symbol() -> None:
    low = png_size(qr_png(URLS[1], 1, error="L"))[0]
    high = png_size(qr_png(URLS[1], 1, error="H"))[0]
    assert high > low


@pytest.mark.parametrize("url", URLS[:3])
def test_the_svg_is_a_well_formed_square_svg_document(url: str) -> None:
    svg = qr_svg(url, scale=5)

    root = ET.fromstring(svg)
    assert root.tag == SVG
    assert root.get("width") == root.get("height")
    assert int(root.get("width") or 0) == png_size(qr_png(url, 5))[0]
    assert svg.decode("utf-8").count("<svg") == 1


def test_the_svg_and_the_png_draw_the_same_symbol() -> None:
    # Same text, same settings: the SVG is the PNG's symbol, so what decodes from one holds for both.
    url = URLS[0]
    svg_side = int(ET.fromstring(qr_svg(url, scale=1)).get("width") or 0)
    assert svg_side == png_size(qr_png(url, 1))[0]


def test_qr_image_and_content_type_follow_the_format() -> None:
    assert content_type("svg") == "image/svg+xml"
    assert content_type("png") == "image/png"
    assert qr_image(URLS[0], "png", scale=4) == qr_png(URLS[0], 4)
    assert qr_image(URLS[0], "svg", scale=4) == qr_svg(URLS[0], scale=4)


def test_drawing_is_deterministic() -> None:
    assert qr_png(URLS[0]) == qr_png(URLS[0])
    assert qr_svg(URLS[0]) == qr_svg(URLS[0])


@pytest.mark.parametrize(
    ("call", "param"),
    [
        (lambda: qr_png(""), "text"),
        (lambda: qr_png("x" * (MAX_TEXT_LENGTH + 1)), "text"),
        (lambda: qr_png(URLS[0], 0), "scale"),
        (lambda: qr_png(URLS[0], MAX_SCALE + 1), "scale"),
        (lambda: qr_png(URLS[0], True), "scale"),  # type: ignore[arg-type]
        (lambda: qr_svg(URLS[0], border=-1), "border"),
        (lambda: qr_png(URLS[0], error="X"), "error"),  # type: ignore[arg-type]
        (lambda: qr_image(URLS[0], "gif"), "format"),  # type: ignore[arg-type]
        (lambda: content_type("jpeg"), "format"),  # type: ignore[arg-type]
    ],
)
def test_bad_arguments_are_invalid_requests_naming_the_parameter(call: object, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        call()  # type: ignore[operator]
    assert caught.value.param == param


def test_a_png_wider_than_the_limit_is_refused() -> None:
    long_url = "https://example.com/" + "a" * 1000  # version ~25: 117 + 8 modules
    with pytest.raises(InvalidRequest) as caught:
        qr_png(long_url, MAX_SCALE)
    assert caught.value.param == "scale"
    assert str(MAX_PNG_SIDE) in caught.value.message


@pytest.mark.parametrize("fmt", ["svg", "png"])
def test_qr_response_carries_the_image_and_its_headers(fmt: str) -> None:
    response = qr_response(URLS[0], fmt, scale=4, filename="plk_01jz5m3k")  # type: ignore[arg-type]

    assert response.body == qr_image(URLS[0], fmt, scale=4)  # type: ignore[arg-type]
    assert response.headers["content-type"].startswith(content_type(fmt))  # type: ignore[arg-type]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-disposition"] == f'inline; filename="plk_01jz5m3k.{fmt}"'


def test_qr_response_filenames_cannot_break_the_header() -> None:
    response = qr_response(URLS[0], "png", filename='../evil"\r\nSet-Cookie: x=1')
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('inline; filename="') and disposition.endswith('.png"')
    name = disposition[len('inline; filename="') : -len('.png"')]
    assert set(name) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    assert "content-disposition" not in qr_response(URLS[0], "png").headers
