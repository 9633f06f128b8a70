"""Helpers shared by the tests: a real server process and a recording client built on the openai SDK."""
