"""`make bench`: the bridge measured beside a bare ASGI app on the same server (see bench/README.md)."""
