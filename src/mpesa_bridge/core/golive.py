"""The go-live doctor's verdicts: plain facts in, a `Check` in plain words out (no I/O here).

`cli/doctor.py` gathers the facts — the database's revision, a token fetch, an STK Query on a
made-up CheckoutRequestID, DNS, the backup marker, Daraja's `Date` header — and these functions
judge them. Each check says what it found, and when it fails, what to do.

Statuses: `ok`; `warn` (works, but look at it); `fail` (payments will not work, or a restore would
not: the doctor exits 1); `skipped` (not checked, and why — never silently).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from mpesa_bridge.core.projects import DarajaEnvironment, ShortcodeType
from mpesa_bridge.core.webhooks.destinations import AddressRule

# Public sandbox values (daraja.md §16): seen in production settings, they cannot work there.
SANDBOX_SHORTCODE = "174379"
SANDBOX_PASSKEY = "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919"
SANDBOX_HOST = "sandbox.safaricom.co.ke"
PRODUCTION_HOST = "api.safaricom.co.ke"
SKEW_WARN = timedelta(seconds=30)
SKEW_FAIL = timedelta(minutes=5)
BACKUP_WARN_AGE = timedelta(days=1)
# A CheckoutRequestID no push ever had, in the format Daraja gives them.
PROBE_CHECKOUT_REQUEST_ID = "ws_CO_01012000000000000000000"


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    name: str
    status: Status
    detail: str
    fix: str = ""
    scope: str = ""  # "" for the bridge, or "<project id> <mode>"


def ok(name: str, detail: str, scope: str = "") -> Check:
    return Check(name, Status.OK, detail, scope=scope)


def failed(name: str, detail: str, fix: str, scope: str = "") -> Check:
    return Check(name, Status.FAIL, detail, fix, scope)


def migrations(current: str | None, head: str) -> Check:
    if current == head:
        return ok("migrations", f"the database is at the code's migration ({head})")
    where = "empty (never migrated)" if current is None else f"at {current}"
    return failed("migrations", f"the database is {where}; this version needs {head}", "run `mpesa-bridge db upgrade`")


def callback_url(url: str, addresses: list[str] | None, resolve_error: str = "") -> Check:
    """`addresses`: what the host resolved to (None: it did not resolve)."""
    name = "callback URL"
    parts = urlsplit(url)
    fix_base = "set MPESA_BRIDGE_PUBLIC_BASE_URL to the public https address Daraja can reach"
    if parts.scheme != "https":
        return failed(name, f"{url} is not https: Daraja (production) calls only https callback URLs", fix_base)
    if addresses is None:
        return failed(name, f"{parts.hostname} does not resolve ({resolve_error or 'no address'})", fix_base)
    rule = AddressRule()
    for address in addresses:
        reason = rule.refusal(address)
        if reason:
            return failed(name, f"{parts.hostname} resolves to {address}: {reason}; Daraja cannot reach it", fix_base)
    return ok(name, f"{url} is https and resolves to public addresses ({', '.join(sorted(set(addresses)))})")


def reachability(url: str, check_url: str | None, status: int | None, error: str = "") -> Check:
    name = "reachable from outside"
    if not check_url:
        return Check(
            name,
            Status.SKIPPED,
            "not checked: no check host is configured",
            "set MPESA_BRIDGE_DOCTOR_CHECK_URL to a check host outside your network (see docs/going-live.md)",
        )
    if status is not None and 200 <= status < 300:
        return ok(name, f"the check host reached {url} (HTTP {status})")
    seen = f"HTTP {status}" if status is not None else (error or "no answer")
    return failed(
        name,
        f"the check host could not reach {url} ({seen})",
        "open the port on the firewall / reverse proxy, and check the DNS record",
    )


def environment_mismatch(
    environment: DarajaEnvironment, base_url: str | None, short_code: str, passkey: str, scope: str
) -> Check:
    name = "environment"
    host = (urlsplit(base_url).hostname or "") if base_url else ""
    if environment is DarajaEnvironment.PRODUCTION:
        if host == SANDBOX_HOST:
            return failed(
                name,
                f"production settings, but MPESA_BRIDGE_DARAJA_PRODUCTION_URL points at the sandbox ({base_url})",
                f"set MPESA_BRIDGE_DARAJA_PRODUCTION_URL to https://{PRODUCTION_HOST}",
                scope,
            )
        if short_code == SANDBOX_SHORTCODE or passkey == SANDBOX_PASSKEY:
            return failed(
                name,
                "production settings with the sandbox's public short code or passkey",
                "enter the short code and passkey of your go-live email (`projects set-daraja`)",
                scope,
            )
    elif environment is DarajaEnvironment.SANDBOX and host == PRODUCTION_HOST:
        return failed(
            name,
            f"sandbox settings, but MPESA_BRIDGE_DARAJA_SANDBOX_URL points at production ({base_url})",
            f"set MPESA_BRIDGE_DARAJA_SANDBOX_URL to https://{SANDBOX_HOST}",
            scope,
        )
    return ok(name, f"{environment.value} settings against {base_url}", scope)


def credentials(error_code: str | None, message: str, scope: str) -> Check:
    name = "credentials"
    if error_code is None:
        return ok(name, "Daraja gave an access token for the consumer key and secret", scope)
    if error_code == "daraja_auth_failed":
        return failed(
            name,
            "Daraja refused the consumer key and secret: a wrong key or secret, or the keys of the sandbox app"
            " used against production (or the reverse)",
            "copy the consumer key and secret of the app that has your go-live products (`projects set-daraja`)",
            scope,
        )
    return failed(name, f"could not fetch a token: {message}", "check the network path to Daraja and retry", scope)


def pairing(
    shortcode_type: ShortcodeType, error_message: str | None, *, reached: bool, other: str = "", scope: str = ""
) -> Check:
    """The STK Query on a made-up CheckoutRequestID: Daraja checks the password (short code +
    passkey + timestamp) before it looks for the request, and prompts no one.

    `error_message`: Daraja's errorMessage (None: it answered without an error); `reached`: False
    when no answer came (nothing could be judged)."""
    name = "short code and passkey"
    if not reached:
        return Check(name, Status.SKIPPED, f"not checked: {other or 'Daraja did not answer'}", scope=scope)
    text = (error_message or "").lower()
    if "wrong credentials" in text:
        return failed(
            name,
            "Daraja says the passkey does not belong to this short code ([MerchantValidate] - Wrong credentials)",
            "enter the passkey Safaricom sent for this short code (the go-live email)",
            scope,
        )
    if "merchant does not exist" in text:
        hint = (
            "for a till (Buy Goods), the short code is the store number (head office), and the till number goes in"
            " till_number with shortcode type till"
            if shortcode_type is ShortcodeType.PAYBILL
            else "the short code of a till is its store number (head office), not the till number"
        )
        return failed(name, "Daraja does not know this short code (Merchant does not exist)", hint, scope)
    return ok(name, "Daraja accepted the short code and passkey (asked about a made-up payment, no prompt)", scope)


def till_or_paybill(shortcode_type: ShortcodeType, short_code: str, till_number: str | None, scope: str) -> Check:
    name = "till or paybill"
    if shortcode_type is ShortcodeType.TILL:
        if not till_number:
            return failed(name, "a till without a till number", "set till_number (`projects set-daraja`)", scope)
        if till_number == short_code:
            return Check(
                name,
                Status.WARN,
                f"till {till_number} is also the short code: usually the short code is the store number (head"
                " office) and the till number differs",
                "check the go-live email: BusinessShortCode = store number, PartyB = till number",
                scope,
            )
        return ok(
            name,
            f"till {till_number} under store {short_code} (pushes use CustomerBuyGoodsOnline); that the till belongs"
            " to the store is not checked: Daraja says so only in a real payment's callback",
            scope,
        )
    return ok(name, f"paybill {short_code} (pushes use CustomerPayBillOnline)", scope)


def clock_skew(local: datetime, remote: datetime | None, source: str) -> Check:
    name = "clock"
    if remote is None:
        return Check(name, Status.SKIPPED, f"not checked: {source} sent no Date header")
    skew = local - remote
    seconds = abs(skew.total_seconds())
    direction = "ahead of" if skew.total_seconds() > 0 else "behind"
    detail = f"this machine's clock is {seconds:.0f}s {direction} {source}"
    fix = "run NTP (systemd-timesyncd, chrony) on this machine"
    if abs(skew) > SKEW_FAIL:
        return failed(name, detail, fix)
    if abs(skew) > SKEW_WARN:
        return Check(name, Status.WARN, detail, fix)
    return ok(name, detail + " (within 30s)")


def master_key_backup(
    marker_at: datetime | None, marker_key_ids: list[str], current_key_id: str, now: datetime, *, live: bool
) -> Check:
    """A backup recorded by `mpesa-bridge backup` that needs the current master key: the operator
    was told, then, to keep that key apart from it."""
    name = "backup and master key"
    fix = "run `mpesa-bridge backup FILE` (on a schedule) and store MPESA_BRIDGE_MASTER_KEY apart from the backups"
    bad = Status.FAIL if live else Status.WARN
    if marker_at is None:
        return Check(name, bad, "no backup recorded in this data directory", fix)
    if marker_key_ids and current_key_id not in marker_key_ids:
        return Check(
            name,
            bad,
            f"the last backup needs master key id(s) {', '.join(marker_key_ids)}, not the current {current_key_id}",
            "keep the old key with the old backups, and back up again under the current key",
        )
    age = now - marker_at
    detail = f"last backup {marker_at.isoformat(timespec='seconds')} needs master key {current_key_id}"
    if age > BACKUP_WARN_AGE:
        return Check(name, Status.WARN, f"{detail}, {age.days} day(s) ago", fix)
    return ok(name, detail + "; keep that key apart from the backups")
