"""The dashboard's pages, one module per area; each exposes a `router`."""
