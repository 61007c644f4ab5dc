"""Shared runtime of every Bureautique Santé service: the chassis."""
