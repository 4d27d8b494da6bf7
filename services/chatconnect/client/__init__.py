"""The Python client SDK: register, link, connect, send, receive, acknowledge, sync.

account = await register_account(target, "+15550100001", code="246810")
async with ChatClient(target, account) as client:
    await client.send_text(peer_user_id, "hello")
    message = await client.receive()
"""

from __future__ import annotations

from chatconnect.client.account import Account, link_device, register_account
from chatconnect.client.errors import ChatError
from chatconnect.client.session import ChatClient, Received

__all__ = ["Account", "ChatClient", "ChatError", "Received", "link_device", "register_account"]
