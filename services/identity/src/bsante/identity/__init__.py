"""Bureautique Santé identity service."""
