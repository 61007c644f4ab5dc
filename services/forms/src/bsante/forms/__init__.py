"""Pure domain code of the forms service: AGGIR/MMS scoring, vital signs, surveillance charts."""
