"""Fixtures of the patient service tests: the embedded platform of tests/kit.py."""

from kit import platform  # noqa: F401
