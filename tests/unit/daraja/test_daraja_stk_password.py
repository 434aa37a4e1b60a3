"""STK Timestamp and Password: the vectors of daraja.md section 3.1 and the Nairobi time zone."""

import base64
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mpesa_bridge.daraja import stk_password, stk_timestamp

SANDBOX_SHORT_CODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"


@pytest.mark.parametrize(
    ("timestamp", "password"),
    [
        (
            "20210628092408",
            "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQy"
            "YzkxOTIwMjEwNjI4MDkyNDA4",
        ),
        (
            "20160216165627",
            "MTc0Mzc5YmZiMjc5ZjlhYTliZGJjZjE1OGU5N2RkNzFhNDY3Y2QyZTBjODkzMDU5YjEwZjc4ZTZiNzJhZGExZWQy"
            "YzkxOTIwMTYwMjE2MTY1NjI3",
        ),
    ],
)
def test_password_matches_the_portal_vectors(timestamp: str, password: str) -> None:
    assert stk_password(SANDBOX_SHORT_CODE, SANDBOX_PASSKEY, timestamp) == password


def test_timestamp_is_nairobi_local_time() -> None:
    assert stk_timestamp(datetime(2021, 6, 28, 6, 24, 8, tzinfo=UTC)) == "20210628092408"


def test_timestamp_rolls_the_date_over_near_utc_midnight() -> None:
    # 22:30 UTC on 31 Dec is 01:30 on 1 Jan in Nairobi (UTC+3).
    assert stk_timestamp(datetime(2023, 12, 31, 22, 30, 5, tzinfo=UTC)) == "20240101013005"


def test_timestamp_accepts_any_aware_zone() -> None:
    lagos = timezone(timedelta(hours=1))
    assert stk_timestamp(datetime(2024, 3, 1, 8, 0, 0, tzinfo=lagos)) == "20240301100000"


def test_timestamp_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        stk_timestamp(datetime(2024, 1, 1, 12, 0, 0))


@given(
    st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2100, 1, 1),
        timezones=st.sampled_from([UTC, ZoneInfo("Europe/London"), ZoneInfo("America/New_York")]),
        allow_imaginary=False,
    )
)
def test_timestamp_is_14_digits_of_the_same_instant_at_utc_plus_3(now: datetime) -> None:
    timestamp = stk_timestamp(now)
    assert len(timestamp) == 14
    assert timestamp.isdigit()
    eat = timezone(timedelta(hours=3))
    parsed = datetime.strptime(timestamp, "%Y%m%d%H%M%S").replace(tzinfo=eat)
    # Compare instants: PEP 495 makes == between zones False for ambiguous (DST fold) times.
    assert parsed.timestamp() == now.replace(microsecond=0).timestamp()


@given(
    short_code=st.from_regex(r"[1-9][0-9]{4,6}", fullmatch=True),
    passkey=st.text(alphabet="0123456789abcdef", min_size=1, max_size=64),
    timestamp=st.from_regex(r"[0-9]{14}", fullmatch=True),
)
def test_password_decodes_to_the_concatenation(short_code: str, passkey: str, timestamp: str) -> None:
    decoded = base64.b64decode(stk_password(short_code, passkey, timestamp), validate=True)
    assert decoded.decode() == short_code + passkey + timestamp
