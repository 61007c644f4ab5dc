"""Fixtures shared by the chassis tests."""
