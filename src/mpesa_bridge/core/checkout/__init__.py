"""Checkout sessions: what a merchant's server opens so that a browser can take one payment."""
