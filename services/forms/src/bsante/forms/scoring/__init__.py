"""Clinical scores: AGGIR grid (GIR 1-6) and MMS GRECO (/30)."""
