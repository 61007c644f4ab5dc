"""A DMP simulator: the DMP's XDS.b repository and registry, its administrative services, over
real HTTP, refusing what the DMP refuses (run with `python -m bsante.dmp_connector.simulator`)."""
