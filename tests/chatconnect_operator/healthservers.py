"""Real gRPC health servers (grpc.health.v1) for the operator's probes to talk to."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


class HealthServer:
    """A grpc.aio server with the standard health service, on loopback."""

    def __init__(self, *, port: int = 0, credentials: grpc.ServerCredentials | None = None) -> None:
        self.service = health.aio.HealthServicer()
        self.server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(self.service, self.server)
        address = f"127.0.0.1:{port}"
        if credentials is None:
            self.port = self.server.add_insecure_port(address)
        else:
            self.port = self.server.add_secure_port(address, credentials)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def start(self, status: int = SERVING) -> HealthServer:
        await self.service.set("", status)
        await self.server.start()
        return self

    async def set(self, status: int) -> None:
        await self.service.set("", status)

    async def stop(self) -> None:
        await self.server.stop(None)
