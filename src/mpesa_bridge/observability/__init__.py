"""What the bridge tells its operators: Prometheus metrics (`instruments.py`, `multiprocess.py`) and
optional error reporting to Sentry (`errors.py`). See docs/operations.md."""
