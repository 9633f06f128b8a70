"""Phone calls: Twilio Media Streams and a SIP line, each call a Realtime session of Parley's own."""
