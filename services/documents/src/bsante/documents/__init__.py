"""Documents toolkit: editor model, CDA R2 N1 builder, CI-SIS conformance and PDF/A rendering."""
