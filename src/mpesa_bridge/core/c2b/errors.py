"""C2B's errors, each under the domain tree of `core.errors` (the API maps them by MRO):

InvalidRequest
└── C2BRegisterRefused     — Daraja (or our own check) refused the URLs or the short code
UpstreamUnavailable
└── C2BRegisterUnavailable — Daraja could not be reached, throttled, or refused the credentials
Conflict
└── C2BStateConflict       — a payment already matched or dismissed; an expected payment not open
"""

from __future__ import annotations

from mpesa_bridge.core.errors import Conflict, InvalidRequest, UpstreamUnavailable


class C2BRegisterRefused(InvalidRequest):
    code = "c2b_register_refused"


class C2BRegisterUnavailable(UpstreamUnavailable):
    code = "daraja_unavailable"


class C2BStateConflict(Conflict):
    code = "c2b_state_conflict"
