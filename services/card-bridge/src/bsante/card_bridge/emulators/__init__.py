"""Card emulators of the project, speaking the vpcd protocol to Debian's vsmartcard-vpcd."""
