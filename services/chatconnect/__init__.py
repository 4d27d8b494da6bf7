"""ChatConnect: the server side of a WhatsApp/Signal-class messenger."""

from __future__ import annotations

__version__ = "0.1.0"
