"""Reversals of succeeded STK payments (docs/reversals.md)."""
