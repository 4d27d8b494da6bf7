"""What every service shares: config, errors at the gRPC edge, auth, telemetry, the server."""
