"""The gateway's refusals, rendered by `app.py` exactly as Daraja renders them.

    GatewayError                 -> HTTP <status> {"requestId", "errorCode", "errorMessage"}
    └── WrongConsumerCredentials -> HTTP 400 with an empty body (OAuth, wrong key or secret)

Unlike the bridge's domain errors these carry an HTTP status: being an HTTP gateway is the point.
"""

from __future__ import annotations

from .ids import gateway_id

INVALID_TOKEN = "404.001.03"
BAD_REQUEST = "400.002.02"
INVALID_PAYLOAD = "400.002.05"
INVALID_AUTH_TYPE = "400.008.01"
INVALID_GRANT_TYPE = "400.008.02"
METHOD_NOT_ALLOWED = "405.001"
MERCHANT_ERROR = "500.001.1001"
INTERNAL_ERROR = "500.003.1001"


class GatewayError(Exception):
    """A synchronous Daraja error envelope."""

    def __init__(self, status_code: int, error_code: str, error_message: str, request_id: str | None = None):
        super().__init__(f"{error_code} {error_message}")
        self.status_code = status_code
        self.error_code = error_code
        self.error_message = error_message
        self.request_id = request_id or gateway_id()

    def envelope(self) -> dict[str, str]:
        return {"requestId": self.request_id, "errorCode": self.error_code, "errorMessage": self.error_message}


class WrongConsumerCredentials(GatewayError):
    """OAuth with an unknown consumer key or a wrong secret: Daraja answers 400 with no body at all."""

    def __init__(self) -> None:
        super().__init__(400, "", "")


def invalid_field(field: str) -> GatewayError:
    return GatewayError(400, BAD_REQUEST, f"Bad Request - Invalid {field}")


def invalid_payload() -> GatewayError:
    return GatewayError(400, INVALID_PAYLOAD, "Invalid Request Payload")


def invalid_access_token() -> GatewayError:
    return GatewayError(404, INVALID_TOKEN, "Invalid Access Token")


def merchant_error(message: str, request_id: str | None = None) -> GatewayError:
    return GatewayError(500, MERCHANT_ERROR, message, request_id)
