"""B2C payouts: the entity, its state machine, limits, approval, sending and settlement."""
