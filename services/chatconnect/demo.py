"""`chatconnect demo`: a real conversation through the public contract, checked end to end.

Three users; Bob has a phone and a linked desktop. Alice and Bob exchange 1:1 messages;
the desktop comes online later and syncs what it missed; Bob's phone loses its connection
and resumes from its cursor; Alice repeats a send, which must not show twice; delivery and
read receipts reach Alice. Then Alice, Bob and Carol form a group: one sender-key message
reaches every member device and its receipts are counted for Alice; Carol follows Alice's
presence and sees her online (with the device kind) and then offline with a last seen.
Every step is checked; the exit code is 0 only if all passed.
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable

from chatconnect.client import ChatClient, ChatError, link_device, register_account
from chatconnect.common.v1 import common_pb2
from chatconnect.demo_steps import (
    create_group,
    next_group_text,
    receipt_summary,
    state_account,
    watch_presence,
)
from chatconnect.presence.v1 import presence_pb2


def _test_number() -> str:
    # Fictional numbers (+1 NXX 555-01XX) register with the target's test code.
    return f"+1{random.randint(200, 999)}55501{random.randint(0, 99):02d}"


class _Checks:
    def __init__(self) -> None:
        self.passed = 0
        self.failed: list[str] = []

    async def run(self, name: str, step: Callable[[], Awaitable[str]]) -> None:
        start = time.perf_counter()
        try:
            detail = await step()
        except (AssertionError, ChatError, TimeoutError) as exc:
            self.failed.append(name)
            print(f"  FAIL {name}: {exc or type(exc).__name__}", flush=True)
            return
        self.passed += 1
        took = (time.perf_counter() - start) * 1000
        print(f"  ok   {name} ({took:.0f} ms){': ' + detail if detail else ''}", flush=True)


async def _receipts(client: ChatClient, kind: int, count: int) -> set[str]:
    seen: set[str] = set()
    deadline = time.monotonic() + 10
    while len(seen) < count and time.monotonic() < deadline:
        item = await client.receive(timeout=max(deadline - time.monotonic(), 0.1))
        envelope = item.envelope
        if (
            envelope is not None
            and envelope.type == common_pb2.ENVELOPE_TYPE_RECEIPT
            and envelope.receipt.type == kind
        ):
            seen.update(envelope.receipt.server_message_ids)
    return seen


async def run_demo(target: str, *, code: str) -> int:
    """Runs the scenario against `target`; returns the process exit code."""
    print(f"ChatConnect demo against {target}", flush=True)
    checks = _Checks()
    state: dict[str, object] = {}
    started = time.perf_counter()
    try:
        alice_account = await register_account(target, _test_number(), code=code)
        bob_account = await register_account(target, _test_number(), code=code)
        state["carol"] = await register_account(target, _test_number(), code=code)
    except ChatError as exc:
        print(f"  FAIL registration: {exc}", flush=True)
        print(
            "Is the system running (make up) and does it accept test numbers with "
            f"code {code}? Use --code to pass another.",
            flush=True,
        )
        return 1
    except Exception as exc:
        print(f"  FAIL cannot reach {target}: {exc}. Start the system with `make up`.")
        return 1
    print(f"  registered alice={alice_account.user_id} bob={bob_account.user_id}", flush=True)
    alice = ChatClient(target, alice_account)
    bob_phone = ChatClient(target, bob_account)
    bob_desktop: ChatClient | None = None
    texts = ["hi Bob", "are you there?", "lunch at 1?"]
    try:

        async def link() -> str:
            nonlocal bob_desktop
            t0 = time.perf_counter()
            desktop_account = await link_device(target, bob_account)
            bob_desktop = ChatClient(target, desktop_account)
            took = (time.perf_counter() - t0) * 1000
            return f"desktop is device {desktop_account.device_id}, linked in {took:.0f} ms"

        async def send_and_receive() -> str:
            await alice.connect()
            await bob_phone.connect()
            results = [await alice.send_text(bob_account.user_id, t) for t in texts]
            state["ids"] = [r.server_message_id for r in results]
            got = [(await bob_phone.receive_message()).text for _ in texts]
            assert got == texts, f"bob's phone got {got}"
            return f"{len(texts)} messages, in order, on Bob's phone"

        async def offline_sync() -> str:
            assert bob_desktop is not None
            await bob_desktop.connect()
            await bob_desktop.wait_drained()
            got = [(await bob_desktop.receive_message()).text for _ in texts]
            assert got == texts, f"bob's desktop got {got}"
            return "the desktop came online and synced all 3"

        async def duplicate() -> str:
            ids = state["ids"]
            assert isinstance(ids, list)
            first = await alice.send_text(
                bob_account.user_id, "only once", client_message_id="demo-dup"
            )
            again = await alice.send_text(
                bob_account.user_id, "only once", client_message_id="demo-dup"
            )
            assert again.duplicate
            assert again.server_message_id == first.server_message_id
            assert (await bob_phone.receive_message()).text == "only once"
            try:
                extra = await bob_phone.receive_message(timeout=0.5)
            except TimeoutError:
                return "the repeated send was recognised and delivered once"
            raise AssertionError(f"bob's phone got a second copy: {extra.text!r}")

        async def reconnect() -> str:
            await bob_phone.drop_connection()
            sent = [await alice.send_text(bob_account.user_id, f"while away {i}") for i in range(2)]
            await bob_phone.connect()
            got = [(await bob_phone.receive_message()).text for _ in sent]
            assert got == ["while away 0", "while away 1"], got
            return f"bob's phone reconnected (connection #{bob_phone.connections}) and resumed"

        async def receipts() -> str:
            ids = state["ids"]
            assert isinstance(ids, list)
            delivered = await _receipts(alice, common_pb2.RECEIPT_TYPE_DELIVERED, len(ids))
            assert set(ids) <= delivered, "missing delivery receipts"
            await bob_phone.send_receipts(
                common_pb2.RECEIPT_TYPE_READ, [(alice_account.user_id, i) for i in ids]
            )
            read = await _receipts(alice, common_pb2.RECEIPT_TYPE_READ, len(ids))
            assert set(ids) <= read, "missing read receipts"
            return "delivered and read receipts reached Alice"

        async def reply() -> str:
            await bob_phone.send_text(alice_account.user_id, "yes, see you at 1")
            assert (await alice.receive_message()).text == "yes, see you at 1"
            assert bob_desktop is not None
            expected = ["only once", "while away 0", "while away 1", "yes, see you at 1"]
            got = [(await bob_desktop.receive_message()).text for _ in expected]
            assert got == expected, f"bob's desktop got {got}"
            return "Alice got the reply; Bob's desktop has the whole conversation, in order"

        async def group() -> str:
            carol = ChatClient(target, state_account(state, "carol"))
            state["carol_client"] = carol
            await carol.connect()
            group_id = await create_group(
                target, alice_account, [bob_account.user_id, state_account(state, "carol").user_id]
            )
            result = await alice.send_group_text(group_id, "team lunch at 1")
            assert bob_desktop is not None
            for reader in (bob_phone, bob_desktop, carol):
                assert await next_group_text(reader, group_id) == "team lunch at 1"
            await carol.send_receipts(
                common_pb2.RECEIPT_TYPE_READ,
                [(alice_account.user_id, result.server_message_id, group_id)],
            )
            summary = await receipt_summary(
                target, alice_account, group_id, result.server_message_id
            )
            assert summary.read_count == 1, f"read by {summary.read_count}"
            return (
                "one ciphertext for the group reached Bob's phone and desktop and Carol; "
                f"read by {summary.read_count} of {summary.recipient_count}"
            )

        async def presence() -> str:
            carol_account = state_account(state, "carol")
            async with watch_presence(target, carol_account, alice_account.user_id) as watch:
                online = await watch.next_state(presence_pb2.PRESENCE_STATE_ONLINE)
                kinds = [common_pb2.DeviceKind.Name(d.kind) for d in online.devices]
                await alice.close()
                offline = await watch.next_state(presence_pb2.PRESENCE_STATE_OFFLINE)
            assert offline.HasField("last_seen_time"), "no last seen"
            return f"Carol saw Alice online ({', '.join(kinds)}), then offline with a last seen"

        for name, step in [
            ("link a second device for Bob", link),
            ("1:1 send and receive", send_and_receive),
            ("offline sync on the second device", offline_sync),
            ("duplicate send stored once", duplicate),
            ("reconnect and resume from cursor", reconnect),
            ("delivery and read receipts", receipts),
            ("reply reaches the sender and the replier's other device", reply),
            ("group message: one ciphertext, every member device", group),
            ("presence: online with device kind, then offline", presence),
        ]:
            await checks.run(name, step)
    finally:
        carol_client = state.get("carol_client")
        for client in (alice, bob_phone, bob_desktop, carol_client):
            if isinstance(client, ChatClient):
                await client.close()
    total = checks.passed + len(checks.failed)
    elapsed = time.perf_counter() - started
    if checks.failed:
        print(
            f"demo: FAILED {len(checks.failed)} of {total} checks ({', '.join(checks.failed)}) "
            f"in {elapsed:.1f}s",
            flush=True,
        )
        return 1
    print(f"demo: all {total} checks passed in {elapsed:.1f}s", flush=True)
    return 0
