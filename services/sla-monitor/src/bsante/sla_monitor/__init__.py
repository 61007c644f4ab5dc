"""SLA monitor: probes, incidents, tickets, SLA computation and usage indicators."""
