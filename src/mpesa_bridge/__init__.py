"""mpesa-bridge: a self-hostable M-Pesa payments gateway."""

__version__ = "0.1.0"
