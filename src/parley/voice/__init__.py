"""The streaming audio pipeline."""
