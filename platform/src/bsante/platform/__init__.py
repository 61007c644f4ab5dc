"""The whole platform in one process on the embedded adapters (`make run`)."""
