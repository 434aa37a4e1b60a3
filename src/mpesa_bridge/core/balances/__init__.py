"""Account Balance queries as an API resource (docs/reversals.md)."""
