"""DMP connector: feeds signed documents to the DMP over IHE XDS.b and consults it."""
