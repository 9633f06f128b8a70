"""Prometheus metrics served on ``/metrics``."""

from prometheus_client import Counter, Gauge, Histogram

ACTIVE_SESSIONS = Gauge("parley_active_sessions", "Realtime sessions currently connected")
ACTIVE_RESPONSES = Gauge("parley_active_responses", "Responses currently generating")
RESPONSES = Counter("parley_responses_total", "Responses finished, by final status", ["status"])
FIRST_OUTPUT_SECONDS = Histogram(
    "parley_response_first_output_seconds",
    "Time from the start of generation to the first text or audio delta",
    buckets=(0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0),
)
