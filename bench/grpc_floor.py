"""What grpcio costs per idle connection before ChatConnect's own code: the floor under
the `idle` scenario's memory per connection.

Starts a bare grpc.aio server in a child process, with the gRPC options and event loop
ChatConnect's server runs with and handlers that do nothing but answer, then has the Go
generator's `grpcfloor` command open CONNECTIONS connections to it, each holding one
call open (`--call stream`: a bidirectional stream, as a device's Connect; `listen`: a
server stream; `unary`: none, only the connection), and prints the server's resident
memory per connection.

    .venv/bin/python bench/grpc_floor.py --call stream --connections 10000
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "services"))

from chatconnect.runtime.server import grpc_options, run_on_loop  # noqa: E402
from chatconnect.runtime.settings import load_settings  # noqa: E402

PORT = 7799
# An empty protobuf message, google.protobuf.Empty, is zero bytes on the wire.
EMPTY = b""


def _say(text: str) -> None:
    print(f"grpc_floor: {text}", flush=True)


async def _stream(requests: AsyncIterator[bytes], _: Any) -> AsyncIterator[bytes]:
    async for _request in requests:
        yield EMPTY


async def _listen(_request: bytes, _context: Any) -> AsyncIterator[bytes]:
    yield EMPTY
    await asyncio.Event().wait()


async def _unary(_request: bytes, _context: Any) -> bytes:
    return EMPTY


async def _serve(port: int) -> None:
    settings = load_settings(None, env={}, overrides={})
    server = grpc.aio.server(options=grpc_options(settings))
    handlers: dict[str, grpc.RpcMethodHandler[bytes, bytes]] = {
        "Stream": grpc.stream_stream_rpc_method_handler(_stream),
        "Listen": grpc.unary_stream_rpc_method_handler(_listen),
        "Unary": grpc.unary_unary_rpc_method_handler(_unary),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("grpcfloor.Floor", handlers),)
    )
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--call", choices=("stream", "listen", "unary"), default="stream")
    parser.add_argument("--connections", type=int, default=10_000)
    parser.add_argument("--hold", default="10s", help="how long to hold them (a Go duration)")
    parser.add_argument("--port", type=int, default=PORT)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        settings = load_settings(None, env={}, overrides={})
        run_on_loop(_serve(args.port), settings.server)
        return 0
    _say(f"starting a bare grpc.aio server on 127.0.0.1:{args.port}")
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--port", str(args.port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        if server.stdout.readline().strip() != "ready":
            _say("the bare server did not start; see its output above")
            return 1
        _say(f"opening {args.connections} connections, each holding: {args.call}")
        generator = subprocess.run(
            [
                "go",
                "run",
                "./cmd/grpcfloor",
                "-target",
                f"127.0.0.1:{args.port}",
                "-server-pid",
                str(server.pid),
                "-call",
                args.call,
                "-connections",
                str(args.connections),
                "-hold",
                args.hold,
            ],
            cwd=ROOT / "bench" / "loadgen",
            check=False,
        )
        return generator.returncode
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    sys.exit(main())
