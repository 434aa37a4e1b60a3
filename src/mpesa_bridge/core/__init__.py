"""The domain core: payments, their state machine, phones and money, callbacks and the outbox.

Nothing here imports a web framework, an ORM or an HTTP client; the adapters
(`api`, `storage`, `daraja`, `workers`, `simulator`, `cli`) depend on this package
and talk to it through the protocols in `ports`.
"""
