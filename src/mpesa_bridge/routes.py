"""URL paths that more than one layer needs: the runtime builds callback URLs from them, the HTTP
app routes them. Here, not in either, so that neither imports the other for a constant."""

from __future__ import annotations

# Where Daraja posts an STK payment's result: CALLBACK_PATH + the payment's callback token.
CALLBACK_PATH = "/v1/callbacks/daraja/stk/"
# Every kind of Daraja callback: CALLBACKS_PREFIX + kind + "/" + token (api/callbacks.py).
CALLBACKS_PREFIX = "/v1/callbacks/daraja/"

# The bridge's own unchanging files (styles, scripts, icons) that its pages load with them: a browser
# fetches several at once with every page, so they spend no per-address request budget.
STATIC_PREFIXES = ("/dashboard/static/", "/pay/assets/", "/docs/assets/")
WIDGET_PATH = "/v1/widget.js"
