"""Bureautique Santé patient service: patient identity management and identitovigilance."""
