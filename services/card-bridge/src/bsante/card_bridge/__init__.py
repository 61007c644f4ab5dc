"""Card bridge: the workstation agent that reads CPS and Vitale cards over PC/SC."""
