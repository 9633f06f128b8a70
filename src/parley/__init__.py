"""Parley: a self-hosted realtime voice AI that speaks the OpenAI Realtime API."""

__version__ = "0.1.0"
