"""Clients for talking to Parley, or any Realtime API server: ``parley ask`` and ``parley talk``."""
