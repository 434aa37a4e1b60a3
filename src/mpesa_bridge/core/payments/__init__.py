"""STK Push payments: the entity, its state machine, and the use cases that move it."""
