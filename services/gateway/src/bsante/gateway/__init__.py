"""Public HTTP entry of the platform: routing, aggregated OpenAPI, contracts."""
