"""mpesa-bridge's Python SDK: `Client` and `AsyncClient` for the bridge's HTTP API, typed models,
a documented exception tree (`mpesa_bridge_sdk.errors`) and `webhooks.verify` for its webhooks.

```python
from mpesa_bridge_sdk import Client

with Client("sk_test_…", base_url="http://127.0.0.1:8000") as bridge:
    payment = bridge.payments.create(phone="0708374149", amount=10, account_reference="INV001")
    print(bridge.payments.wait(payment.id, timeout=60).status)
```
"""

from mpesa_bridge_sdk import webhooks
from mpesa_bridge_sdk._async_client import AsyncClient, AsyncPage
from mpesa_bridge_sdk._client import Client, Page
from mpesa_bridge_sdk._core import VERSION, new_idempotency_key, sign
from mpesa_bridge_sdk.errors import (
    APIConnectionError,
    APIError,
    APIServerError,
    APITimeoutError,
    AuthenticationError,
    ConflictError,
    IdempotencyError,
    InvalidRequestError,
    MpesaBridgeError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    SignatureError,
    WaitTimeoutError,
    WebhookVerificationError,
)
from mpesa_bridge_sdk.models import (
    FINAL_PAYMENT_STATUSES,
    ApiKey,
    Attempt,
    BalanceQuery,
    C2BPayment,
    C2BRegistration,
    C2BSettings,
    CheckoutPayment,
    CheckoutSession,
    DeletedWebhookEndpoint,
    Delivery,
    Event,
    Evidence,
    ExpectedPayment,
    Payment,
    PaymentLink,
    PaymentTotals,
    Payout,
    PayoutSettings,
    ProjectSettings,
    PublishableKeyRotation,
    QrCode,
    Reversal,
    TransactionStatusQuery,
    WebhookEndpoint,
)

__version__ = VERSION
sign_request = sign

__all__ = [
    "FINAL_PAYMENT_STATUSES",
    "APIConnectionError",
    "APIError",
    "APIServerError",
    "APITimeoutError",
    "ApiKey",
    "AsyncClient",
    "AsyncPage",
    "Attempt",
    "AuthenticationError",
    "BalanceQuery",
    "C2BPayment",
    "C2BRegistration",
    "C2BSettings",
    "CheckoutPayment",
    "CheckoutSession",
    "Client",
    "ConflictError",
    "DeletedWebhookEndpoint",
    "Delivery",
    "Event",
    "Evidence",
    "ExpectedPayment",
    "IdempotencyError",
    "InvalidRequestError",
    "MpesaBridgeError",
    "NotFoundError",
    "Page",
    "Payment",
    "PaymentLink",
    "PaymentTotals",
    "Payout",
    "PayoutSettings",
    "PermissionDeniedError",
    "ProjectSettings",
    "PublishableKeyRotation",
    "QrCode",
    "RateLimitError",
    "Reversal",
    "SignatureError",
    "TransactionStatusQuery",
    "WaitTimeoutError",
    "WebhookEndpoint",
    "WebhookVerificationError",
    "__version__",
    "new_idempotency_key",
    "sign_request",
    "webhooks",
]
