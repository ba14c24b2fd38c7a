"""Handlers with planted bugs, one kind each, for ``python -m harness fuzz --handler``."""
