"""French health directory identifiers (RPPS, ADELI, FINESS) and the Annuaire Santé extraction."""
