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
TURN_STAGE_SECONDS = Histogram(
    "parley_turn_stage_seconds",
    "Time from receiving a voice turn's last voiced audio to each stage of its answer",
    ["stage"],
    buckets=(0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0, 10.0),
)
EARLY_ANSWERS = Counter(
    "parley_early_answers_total",
    "Answers prepared during a pause, by outcome (used, dropped: the person went on, stale: the context changed)",
    ["outcome"],
)
LLM_WORKER_EXITS = Counter(
    "parley_llm_worker_exits_total",
    "Unplanned exits of the language model's worker process, by how it ended (each is followed by a restart)",
    ["reason"],
)
STORAGE_WRITE_FAILURES = Counter(
    "parley_storage_write_failures_total",
    "Database writes that failed, by kind (transient: kept and retried; permanent: the database refused it)",
    ["kind"],
)
STORAGE_WRITES_DROPPED = Counter(
    "parley_storage_writes_dropped_total",
    "Database writes given up on, by reason (overflow: the retry buffer was full; refused; shutdown)",
    ["reason"],
)
STORAGE_PENDING_WRITES = Gauge("parley_storage_pending_writes", "Database writes waiting to be written or retried")
