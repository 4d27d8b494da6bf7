"""The ScyllaDB schema, as ordered migrations. Append; never edit a past entry.

Only CQL that ScyllaDB and Apache Cassandra both run (DESIGN.md §5): no secondary-index
variants, no materialized views, no engine-specific table options. Lookups by a second key
are tables of their own, written in the same partition-batch or logged batch as the row
they point to. Time is stored as seconds since the epoch (double), as in the embedded store.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    """One schema version: what it does and its statements, applied in order."""

    description: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        "accounts, devices, keys, sends and inboxes",
        (
            # users --------------------------------------------------------------------------
            """CREATE TABLE IF NOT EXISTS accounts (
                user_id text PRIMARY KEY,
                phone_number text,
                identity_key blob,
                next_device_id int,
                created_at double)""",
            # Claimed with IF NOT EXISTS, then changed only with IF write_time = ?: at most
            # one account per phone number. The other columns record the registration that
            # owns the number now (users/scylla.py), so a retry of it converges: its outcome
            # (incarnation, took_over, removed device ids) and the write timestamps of its
            # batch (old rows deleted at delete_time, new ones written at write_time).
            """CREATE TABLE IF NOT EXISTS accounts_by_phone (
                phone_number text PRIMARY KEY,
                user_id text,
                created_at double,
                verification_id text,
                request_id text,
                incarnation text,
                took_over boolean,
                removed set<int>,
                delete_time bigint,
                write_time bigint)""",
            """CREATE TABLE IF NOT EXISTS verifications (
                verification_id text PRIMARY KEY,
                phone_number text,
                request_id text,
                code_hash blob,
                expires_at double,
                attempts int,
                completed_request_id text,
                completed_user_id text,
                completed_incarnation text,
                completed_took_over boolean)""",
            # Claimed with IF NOT EXISTS; holds the verification's fields so that a retry
            # can finish writing the `verifications` row it points to.
            """CREATE TABLE IF NOT EXISTS verifications_by_request (
                phone_number text,
                request_id text,
                verification_id text,
                code_hash blob,
                expires_at double,
                PRIMARY KEY ((phone_number, request_id)))""",
            """CREATE TABLE IF NOT EXISTS device_sessions (
                token_hash blob PRIMARY KEY,
                user_id text,
                device_id int,
                incarnation text,
                expires_at double)""",
            # devices ------------------------------------------------------------------------
            # One partition per account: listing a user's devices is one read.
            """CREATE TABLE IF NOT EXISTS devices (
                user_id text,
                device_id int,
                incarnation text,
                registration_id int,
                kind int,
                encrypted_name blob,
                created_at double,
                last_seen_at double,
                PRIMARY KEY ((user_id), device_id))""",
            # Approved and completed with LWTs (IF approved_user_id = null, IF
            # completed_request_id = null); `device_created` is set in the logged batch that
            # writes the device row. Every write carries a TTL (a day past `expires_at`).
            """CREATE TABLE IF NOT EXISTS device_links (
                link_code text PRIMARY KEY,
                secret_hash blob,
                request_id text,
                ephemeral_key blob,
                kind int,
                expires_at double,
                approved_user_id text,
                approved_request_id text,
                provisioning blob,
                device_id int,
                incarnation text,
                completed_request_id text,
                device_created boolean)""",
            """CREATE TABLE IF NOT EXISTS device_links_by_secret (
                secret_hash blob PRIMARY KEY,
                link_code text)""",
            # Claimed with IF NOT EXISTS: a retried BeginLink gets its link code back.
            """CREATE TABLE IF NOT EXISTS device_links_by_request (
                request_id text,
                ephemeral_key blob,
                link_code text,
                PRIMARY KEY ((request_id, ephemeral_key)))""",
            # Links an account approved that are not completed yet: they hold a place under
            # the device limit. Written only in conditional batches on the static `version`
            # (and deleted with LWTs), so one account's approvals are serialized.
            """CREATE TABLE IF NOT EXISTS device_links_by_approver (
                user_id text,
                link_code text,
                device_id int,
                expires_at double,
                version int static,
                PRIMARY KEY ((user_id), link_code))""",
            # keys ---------------------------------------------------------------------------
            """CREATE TABLE IF NOT EXISTS signed_prekeys (
                user_id text,
                device_id int,
                key_id int,
                public_key blob,
                signature blob,
                PRIMARY KEY ((user_id), device_id))""",
            # Only LWTs write here (keys/scylla.py): each key is taken with DELETE ... IF, and
            # keys are added in conditional batches on the static `version`.
            """CREATE TABLE IF NOT EXISTS one_time_prekeys (
                user_id text,
                device_id int,
                key_id int,
                public_key blob,
                version int static,
                PRIMARY KEY ((user_id, device_id), key_id))""",
            # router -------------------------------------------------------------------------
            # Claimed with IF NOT EXISTS; `plan` fixes each recipient's sequence and
            # `write_time` the timestamp of every inbox write, so finishing an interrupted
            # send rewrites exactly the same cells (and never revives an acknowledged one).
            """CREATE TABLE IF NOT EXISTS sends (
                sender_user_id text,
                sender_device_id int,
                client_message_id text,
                server_message_id text,
                server_time double,
                expires_at double,
                write_time bigint,
                plan map<text, bigint>,
                done boolean,
                PRIMARY KEY ((sender_user_id, sender_device_id, client_message_id)))""",
            # The durable high-water mark of each inbox's sequences (see router/sequences.py).
            """CREATE TABLE IF NOT EXISTS inbox_heads (
                user_id text,
                device_id int,
                reserved bigint,
                PRIMARY KEY ((user_id, device_id)))""",
            """CREATE TABLE IF NOT EXISTS inbox (
                user_id text,
                device_id int,
                sequence bigint,
                server_message_id text,
                type int,
                sender_user_id text,
                sender_device_id int,
                client_message_id text,
                destination_user_id text,
                destination_group_id text,
                content blob,
                server_time double,
                expires_at double,
                urgent boolean,
                extra text,
                PRIMARY KEY ((user_id, device_id), sequence))
                WITH CLUSTERING ORDER BY (sequence ASC)""",
            # Same partition key as `inbox`: both rows go in one single-partition batch.
            """CREATE TABLE IF NOT EXISTS inbox_by_message (
                user_id text,
                device_id int,
                server_message_id text,
                sequence bigint,
                PRIMARY KEY ((user_id, device_id), server_message_id))""",
            """CREATE TABLE IF NOT EXISTS inbox_gaps (
                user_id text,
                device_id int,
                first_sequence bigint,
                last_sequence bigint,
                PRIMARY KEY ((user_id, device_id), first_sequence))""",
        ),
    ),
    Migration(
        "groups, privacy and contacts, last seen, read markers, tombstones, group logs",
        (
            # groups (anchor: keep this comment; the groups tables go below it) -------------
            # users: privacy settings and contacts (anchor) ----------------------------------
            # presence: coalesced last seen (anchor) ----------------------------------------
            # devices: read markers and tombstones (anchor) ---------------------------------
            # router: message origins and group logs (anchor) -------------------------------
        ),
    ),
)

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version int PRIMARY KEY,
    description text,
    applied_at timestamp)"""
