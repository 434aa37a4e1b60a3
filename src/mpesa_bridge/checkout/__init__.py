"""The customer's side of a checkout session: the hosted payment page at /pay/{id} (docs/checkout.md)."""
