"""Fixtures of the cross-service tests (defined in kit.py)."""

from kit import platform  # noqa: F401
