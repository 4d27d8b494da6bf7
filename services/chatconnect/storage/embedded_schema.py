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
        # One row per group; `deleted` is never set here (a group whose last member leaves
        # is deleted with its rows), the column keeps parity with the ScyllaDB store.
        """CREATE TABLE groups (
            group_id TEXT PRIMARY KEY,
            created_by TEXT NOT NULL,
            created_at REAL NOT NULL,
            updated_at REAL NOT NULL,
            encrypted_title BLOB NOT NULL,
            encrypted_description BLOB NOT NULL,
            avatar_media_id TEXT NOT NULL,
            only_admins_send INTEGER NOT NULL,
            only_admins_edit_info INTEGER NOT NULL,
            join_approval_required INTEGER NOT NULL,
            only_admins_add_members INTEGER NOT NULL,
            membership_version INTEGER NOT NULL,
            revision INTEGER NOT NULL,
            member_count INTEGER NOT NULL,
            ban_count INTEGER NOT NULL,
            join_request_count INTEGER NOT NULL,
            invite_code TEXT UNIQUE,
            invite_created_by TEXT,
            invite_created_at REAL,
            invite_expires_at REAL,
            invite_use_count INTEGER NOT NULL DEFAULT 0)""",
        """CREATE TABLE group_members (
            group_id TEXT NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            role INTEGER NOT NULL,
            added_by TEXT NOT NULL,
            joined_at REAL NOT NULL,
            PRIMARY KEY (group_id, user_id)) WITHOUT ROWID""",
        "CREATE INDEX group_members_by_user ON group_members(user_id, group_id)",
        """CREATE TABLE group_bans (
            group_id TEXT NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            banned_by TEXT NOT NULL,
            banned_at REAL NOT NULL,
            PRIMARY KEY (group_id, user_id)) WITHOUT ROWID""",
        """CREATE TABLE group_join_requests (
            group_id TEXT NOT NULL REFERENCES groups(group_id) ON DELETE CASCADE,
            user_id TEXT NOT NULL,
            requested_at REAL NOT NULL,
            PRIMARY KEY (group_id, user_id)) WITHOUT ROWID""",
        # The answer to each mutating groups request, for retries with its request_id.
        """CREATE TABLE group_requests (
            user_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            method TEXT NOT NULL,
            result TEXT NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (user_id, request_id)) WITHOUT ROWID""",
        "CREATE INDEX group_requests_by_expiry ON group_requests(expires_at)",
        # users: privacy settings and contacts (anchor)
        # NULL columns were never changed: the adapter reads them as the defaults.
        """CREATE TABLE privacy_settings (
            user_id TEXT PRIMARY KEY,
            last_seen INTEGER,
            online INTEGER,
            profile_photo INTEGER,
            about INTEGER,
            status INTEGER,
            read_receipts INTEGER,
            group_add INTEGER) WITHOUT ROWID""",
        """CREATE TABLE contacts (
            owner_id TEXT NOT NULL,
            contact_id TEXT NOT NULL,
            PRIMARY KEY (owner_id, contact_id)) WITHOUT ROWID""",
        """CREATE TABLE contact_requests (
            owner_id TEXT NOT NULL,
            request_id TEXT NOT NULL,
            contact_count INTEGER NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (owner_id, request_id)) WITHOUT ROWID""",
        # presence: coalesced last seen (anchor)
        # One row per user: written at most once per presence.last_seen_write_interval.
        """CREATE TABLE last_seen (
            user_id TEXT PRIMARY KEY,
            last_seen REAL NOT NULL,
            written_at REAL NOT NULL)""",
        # devices: read markers and tombstones (anchor)
        # One row per (account, conversation); conversation is "u:<user id>" or "g:<group id>".
        # Moved only forward, by a conditional upsert (devices/sync_embedded.py).
        """CREATE TABLE read_markers (
            user_id TEXT NOT NULL,
            conversation TEXT NOT NULL,
            read_through_time REAL NOT NULL,
            read_through_server_message_id TEXT NOT NULL,
            PRIMARY KEY (user_id, conversation)) WITHOUT ROWID""",
        # One row per (account, conversation, message): a repeat or a second device's delete
        # converges on it; kept until expires_at (the message retention).
        """CREATE TABLE tombstones (
            user_id TEXT NOT NULL,
            conversation TEXT NOT NULL,
            server_message_id TEXT NOT NULL,
            scope INTEGER NOT NULL,
            delete_time REAL NOT NULL,
            deleted_by_user_id TEXT NOT NULL,
            deleted_by_device_id INTEGER NOT NULL,
            expires_at REAL NOT NULL,
            PRIMARY KEY (user_id, conversation, server_message_id)) WITHOUT ROWID""",
        "CREATE INDEX tombstones_by_time ON tombstones("
        "user_id, delete_time, conversation, server_message_id)",
        "CREATE INDEX tombstones_by_expiry ON tombstones(expires_at)",
        # router: message origins and group logs (anchor)
        # Who sent a message, where and when, by server message id: what a delete for
        # everyone is checked against. Written in the send's commit transaction.
        """CREATE TABLE message_origins (
            server_message_id TEXT PRIMARY KEY,
            sender_user_id TEXT NOT NULL,
            sender_device_id INTEGER NOT NULL,
            destination_user_id TEXT NOT NULL,
            destination_group_id TEXT NOT NULL,
            server_time REAL NOT NULL,
            expires_at REAL NOT NULL)""",
        "CREATE INDEX message_origins_by_expiry ON message_origins(expires_at)",
        # router: group messages, large-group logs (lead)
        """CREATE TABLE group_messages (
            group_id TEXT NOT NULL,
            server_message_id TEXT NOT NULL,
            sender_user_id TEXT NOT NULL,
            sender_device_id INTEGER NOT NULL,
            server_time REAL NOT NULL,
            expires_at REAL NOT NULL,
            recipient_count INTEGER NOT NULL,
            PRIMARY KEY (group_id, server_message_id)) WITHOUT ROWID""",
        """CREATE TABLE group_log_heads (
            group_id TEXT PRIMARY KEY,
            head INTEGER NOT NULL)""",
        """CREATE TABLE group_log (
            group_id TEXT NOT NULL,
            position INTEGER NOT NULL,
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
            PRIMARY KEY (group_id, position)) WITHOUT ROWID""",
        "CREATE UNIQUE INDEX group_log_by_message ON group_log(group_id, server_message_id)",
    ],
]
