"""The OpenAI Realtime protocol: wire shapes, sessions, conversations and responses."""
