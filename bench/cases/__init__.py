"""One module per case; each has `run(ctx)` and adds its figures to `ctx`."""
