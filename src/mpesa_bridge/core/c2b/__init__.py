"""C2B: customers paying a till or paybill from their phone, and matching those payments (docs/c2b.md)."""
