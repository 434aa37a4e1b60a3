"""Background work: applying stored callbacks (inbox) and settling payments (reconciliation)."""
