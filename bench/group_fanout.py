"""Time from a group send to its delivery on the last online member's device.

Starts the whole system in this process (embedded, or distributed on the test Cassandra and
Redis of `tools/testenv`), registers MEMBERS accounts, connects every one of them with the
Python SDK, puts them all in one group, lets the sender distribute its sender key once, then
sends ROUNDS messages and times each from the send call to the moment the last member's
client has it decrypted.

    .venv/bin/python bench/group_fanout.py --members 1000 --store embedded
    .venv/bin/python bench/group_fanout.py --members 1000 --store distributed
    .venv/bin/python bench/group_fanout.py --members 1000 --threshold 5000   # fan-out on write
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chatconnect.client import Account, ChatClient
from chatconnect.groups.v1 import groups_pb2
from chatconnect.groups.v1 import groups_service_pb2 as groups_pb
from chatconnect.groups.v1 import groups_service_pb2_grpc as groups_grpc
from tests.conftest import Server, distributed_overrides, running_server
from tests.scylla import scylla_config
from tests.servers import redis_url


def _say(text: str) -> None:
    print(f"group_fanout: {text}", flush=True)


async def _register_all(server: Server, count: int) -> list[Account]:
    accounts: list[Account] = []
    gate = asyncio.Semaphore(16)

    async def one() -> None:
        async with gate:
            accounts.append(await server.register())
            if len(accounts) % 100 == 0:
                _say(f"registered {len(accounts)}/{count}")

    await asyncio.gather(*(one() for _ in range(count)))
    return accounts


async def _group(server: Server, owner: Account, members: list[Account], batch: int) -> str:
    async with server.channel() as channel:
        stub = groups_grpc.GroupsServiceStub(channel)
        created = await stub.CreateGroup(
            groups_pb.CreateGroupRequest(
                request_id=uuid.uuid4().hex,
                info=groups_pb2.GroupInfo(encrypted_title=b"bench"),
            ),
            metadata=owner.metadata(),
        )
        group_id = created.group.group_id
        for start in range(0, len(members), batch):
            await stub.AddMembers(
                groups_pb.AddMembersRequest(
                    request_id=uuid.uuid4().hex,
                    group_id=group_id,
                    user_ids=[m.user_id for m in members[start : start + batch]],
                ),
                metadata=owner.metadata(),
            )
    return group_id


async def _next_group_text(client: ChatClient, group_id: str) -> str:
    while True:
        item = await client.receive(60)
        envelope = item.envelope
        if envelope is not None and envelope.destination.group_id == group_id and item.plaintext:
            return item.text


async def run(args: argparse.Namespace) -> None:
    sections: list[dict[str, dict[str, Any]]] = [
        {
            "groups": {
                "max_members": max(1024, args.members),
                "fan_out_on_read_threshold": args.threshold,
            }
        },
        {"router": {"sends_per_second": 1000.0, "send_burst": 1000}},
        # The sender fetches every member's prekeys once to distribute its sender key.
        {"keys": {"bundle_fetches_per_minute": 100_000}},
    ]
    if args.store == "distributed":
        sections.insert(0, distributed_overrides(scylla_config(), redis_url()))
    with tempfile.TemporaryDirectory() as data:
        async with running_server(Path(data), *sections) as server:
            _say(f"{args.store} server on {server.target}; registering {args.members} accounts")
            owner, *members = await _register_all(server, args.members)
            group_id = await _group(
                server, owner, members, server.settings.groups.max_users_per_request
            )
            mode = "read" if args.members > args.threshold else "write"
            _say(f"group of {args.members} members (fan-out on {mode}); connecting clients")
            clients = [server.client(m) for m in members]
            for start in range(0, len(clients), 50):
                await asyncio.gather(*(c.connect() for c in clients[start : start + 50]))
            await asyncio.gather(*(c.wait_drained(120) for c in clients))
            await asyncio.sleep(args.settle)  # let the connects' own work (presence) finish
            sender = server.client(owner)
            await sender.connect()
            _say("distributing the sender key (first message)")
            await sender.send_group_text(group_id, "warm-up")
            await asyncio.gather(*(_next_group_text(c, group_id) for c in clients))
            timings: list[float] = []
            for round_number in range(args.rounds):
                await asyncio.sleep(args.pause)  # the previous round's acknowledgements land
                text = f"round {round_number}"
                started = time.perf_counter()
                waiters = [asyncio.create_task(_next_group_text(c, group_id)) for c in clients]
                await sender.send_group_text(group_id, text)
                acknowledged = time.perf_counter() - started
                received = await asyncio.gather(*waiters)
                last = time.perf_counter() - started
                assert received == [text] * len(clients), "a member missed the message"
                timings.append(last)
                _say(
                    f"round {round_number}: send acknowledged in {acknowledged * 1000:.0f} ms, "
                    f"last of {len(clients)} online members had it after {last * 1000:.0f} ms"
                )
            _say(
                f"members={args.members} store={args.store} fan-out-on-{mode}: "
                f"send -> last online member: median {statistics.median(timings) * 1000:.0f} ms, "
                f"max {max(timings) * 1000:.0f} ms over {len(timings)} rounds"
            )
            await sender.close()
            for start in range(0, len(clients), 100):
                await asyncio.gather(*(c.close() for c in clients[start : start + 100]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--settle", type=float, default=10.0, help="seconds to wait after connecting"
    )
    parser.add_argument("--pause", type=float, default=2.0, help="seconds between rounds")
    parser.add_argument("--store", choices=["embedded", "distributed"], default="embedded")
    parser.add_argument(
        "--threshold", type=int, default=512, help="groups.fan_out_on_read_threshold"
    )
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
