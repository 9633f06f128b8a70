"""Model adapters behind small interfaces; each is loaded once per process and shared by all sessions."""
