"""The operator's side: limits per key, the session recorder, and the routes and commands that report usage
and transcripts."""
