"""Measurement harnesses behind ``parley bench``: they act as Realtime clients of any compatible server."""
