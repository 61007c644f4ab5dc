"""MSSanté connector: signed documents sent by secure mail, received mail integrated."""
