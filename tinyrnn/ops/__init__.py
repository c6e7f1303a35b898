"""Primitive ops: ``Function`` subclasses whose forward and backward work on NumPy arrays."""
