"""`python -m mpesa_bridge` is the `mpesa-bridge` command."""

from mpesa_bridge.cli import main

main()
