"""The embedded (SQLite) schema, as ordered migrations. Append; never edit a past entry."""

from __future__ import annotations

MIGRATIONS: list[list[str]] = [
    [
        # users
        """CREATE TABLE accounts (
            user_id TEXT PRIMARY KEY,
            phone_number TEXT NOT NULL UNIQUE,
            identity_key BLOB NOT NULL,
            next_device_id INTEGER NOT NULL,
            created_at REAL NOT NULL)""",
        """CREATE TABLE verifications (
            verification_id TEXT PRIMARY KEY,
            phone_number TEXT NOT NULL,
            request_id TEXT NOT NULL,
            code_hash BLOB NOT NULL,
            expires_at REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            completed_request_id TEXT,
            completed_user_id TEXT,
            completed_incarnation TEXT,
            completed_took_over INTEGER NOT NULL DEFAULT 0)""",
        "CREATE UNIQUE INDEX verifications_by_request ON verifications(phone_number, request_id)",
        """CREATE TABLE device_sessions (
            token_hash BLOB PRIMARY KEY,
            user_id TEXT NOT NULL,
            device_id INTEGER NOT NULL,
            incarnation TEXT NOT NULL,
            expires_at REAL NOT NULL)""",
        "CREATE INDEX device_sessions_by_device ON device_sessions(user_id, device_id)",
        # devices
        """CREATE TABLE devices (
            user_id TEXT NOT NULL,
            device_id INTEGER NOT NULL,
            incarnation TEXT NOT NULL,
            registration_id INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            encrypted_name BLOB NOT NULL DEFAULT x'',
            created_at REAL NOT NULL,
            last_seen_at REAL NOT NULL,
            PRIMARY KEY (user_id, device_id)) WITHOUT ROWID""",
        """CREATE TABLE device_links (
            link_code TEXT PRIMARY KEY,
            secret_hash BLOB NOT NULL UNIQUE,
            request_id TEXT NOT NULL,
            ephemeral_key BLOB NOT NULL,
            kind INTEGER NOT NULL,
            expires_at REAL NOT NULL,
            approved_user_id TEXT,
            approved_request_id TEXT,
            provisioning BLOB,
            device_id INTEGER,
            incarnation TEXT,
            completed_request_id TEXT)""",
        # keys
        """CREATE TABLE signed_prekeys (
            user_id TEXT NOT NULL,
            device_id INTEGER NOT NULL,
            key_id INTEGER NOT NULL,
            public_key BLOB NOT NULL,
            signature BLOB NOT NULL,
            PRIMARY KEY (user_id, device_id)) WITHOUT ROWID""",
        """CREATE TABLE one_time_prekeys (
            user_id TEXT NOT NULL,
            device_id INTEGER NOT NULL,
            key_id INTEGER NOT NULL,
            public_key BLOB NOT NULL,
            PRIMARY KEY (user_id, device_id, key_id)) WITHOUT ROWID""",
        # router
        """CREATE TABLE sends (
            sender_user_id TEXT NOT NULL,
            sender_device_id INTEGER NOT NULL,
            client_message_id TEXT NOT NULL,
            server_message_id TEXT NOT NULL,
            server_time REAL NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (sender_user_id, sender_device_id, client_message_id)) WITHOUT ROWID""",
        "CREATE INDEX sends_by_expiry ON sends(expires_at)",
        """CREATE TABLE inbox_heads (
            user_id TEXT NOT NULL,
            device_id INTEGER NOT NULL,
            last_sequence INTEGER NOT NULL,
            PRIMARY KEY (user_id, device_id)) WITHOUT ROWID""",
        """CREATE TABLE inbox (
            user_id TEXT NOT NULL,
            device_id INTEGER NOT NULL,
            sequence INTEGER NOT NULL,
            server_message_id TEXT NOT NULL,
            type INTEGER NOT NULL,
            sender_user_id TEXT,
            sender_device_id INTEGER,
            client_message_id TEXT NOT NULL,
            destination_user_id TEXT NOT NULL,
            destination_group_id TEXT NOT NULL,
            content BLOB NOT NULL,
            server_time REAL NOT NULL,
            expires_at REAL NOT NULL,
            urgent INTEGER NOT NULL,
            extra TEXT,
            PRIMARY KEY (user_id, device_id, sequence)) WITHOUT ROWID""",
        "CREATE INDEX inbox_by_message ON inbox(user_id, device_id, server_message_id)",
        "CREATE INDEX inbox_by_expiry ON inbox(expires_at)",
        """CREATE TABLE inbox_gaps (
            user_id TEXT NOT NULL,
            device_id INTEGER NOT NULL,
            first_sequence INTEGER NOT NULL,
            last_sequence INTEGER NOT NULL,
            PRIMARY KEY (user_id, device_id, first_sequence)) WITHOUT ROWID""",
    ],
    [
        # groups (anchor: keep this comment; the groups tables go below it)
        # users: privacy settings and contacts (anchor)
        # presence: coalesced last seen (anchor)
        # devices: read markers and tombstones (anchor)
        # router: message origins and group logs (anchor)
    ],
]
