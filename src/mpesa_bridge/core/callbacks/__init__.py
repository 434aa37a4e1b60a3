"""The inbox: Daraja callbacks are stored raw first, then matched and applied."""
