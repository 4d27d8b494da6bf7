"""What every service shares: configuration, errors at the gRPC edge, auth, telemetry, the server."""
