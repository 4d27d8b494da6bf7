"""The ScyllaDB schema, as ordered migrations. Append; never edit a past entry.

Only CQL that ScyllaDB and Apache Cassandra both run (DESIGN.md §5): no secondary-index
variants, no materialized views, no engine-specific table options. Lookups by a second key
are tables of their own, written in the same partition-batch or logged batch as the row
they point to. Time is stored as seconds since the epoch (double), as in the embedded store.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AddColumns:
    """`ALTER TABLE table ADD (...)` for the columns it does not have yet. CQL has no ADD
    IF NOT EXISTS that ScyllaDB and Cassandra both run, so `chatconnect migrate` reads
    system_schema.columns first: an interrupted run can rerun, like the CREATEs."""

    table: str
    columns: tuple[tuple[str, str], ...]
    """(name, CQL type) pairs."""


@dataclass(frozen=True)
class Migration:
    """One schema version: what it does and its statements, applied in order."""

    description: str
    statements: tuple[str | AddColumns, ...]


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
            # A partition per group: the group row in static columns and one clustering row
            # per member, so the send path reads members, roles, settings and the
            # membership version in one single-partition read. Changes are fenced by an LWT
            # on the statics (IF revision = ? AND pending = null) that also stores the
            # change in `pending`; its rows (here and in the tables below) are then written
            # at the fixed timestamp `write_time`, and `pending` is cleared. Readers
            # overlay a pending change, and any writer finishes one it finds
            # (groups/scylla.py).
            """CREATE TABLE IF NOT EXISTS groups (
                group_id text,
                user_id text,
                role int,
                added_by text,
                joined_at double,
                created_by text static,
                created_at double static,
                updated_at double static,
                encrypted_title blob static,
                encrypted_description blob static,
                avatar_media_id text static,
                only_admins_send boolean static,
                only_admins_edit_info boolean static,
                join_approval_required boolean static,
                only_admins_add_members boolean static,
                membership_version bigint static,
                revision bigint static,
                member_count int static,
                ban_count int static,
                join_request_count int static,
                invite_code text static,
                invite_created_by text static,
                invite_created_at double static,
                invite_expires_at double static,
                invite_use_count bigint static,
                deleted boolean static,
                write_time bigint static,
                pending text static,
                PRIMARY KEY ((group_id), user_id))""",
            # The other direction: a partition per user (ListMyGroups, the per-user limit).
            # A hint only: every group found here is checked against `groups`.
            """CREATE TABLE IF NOT EXISTS user_groups (
                user_id text,
                group_id text,
                joined_at double,
                PRIMARY KEY ((user_id), group_id))""",
            """CREATE TABLE IF NOT EXISTS group_bans (
                group_id text,
                user_id text,
                banned_by text,
                banned_at double,
                PRIMARY KEY ((group_id), user_id))""",
            """CREATE TABLE IF NOT EXISTS group_join_requests (
                group_id text,
                user_id text,
                requested_at double,
                PRIMARY KEY ((group_id), user_id))""",
            # Invite code -> group; the group row says whether the code is still current.
            """CREATE TABLE IF NOT EXISTS group_invites (
                invite_code text PRIMARY KEY,
                group_id text)""",
            # The answer to each mutating groups request, kept (with a TTL) for retries.
            """CREATE TABLE IF NOT EXISTS group_requests (
                user_id text,
                request_id text,
                method text,
                result text,
                expires_at double,
                PRIMARY KEY ((user_id, request_id)))""",
            # users: privacy settings and contacts (anchor) ----------------------------------
            # Null columns were never changed: the adapter reads them as the defaults.
            """CREATE TABLE IF NOT EXISTS privacy_settings (
                user_id text PRIMARY KEY,
                last_seen int,
                online int,
                profile_photo int,
                about int,
                status int,
                read_receipts boolean,
                group_add int)""",
            # One partition per owner. The static columns are written only by the
            # conditional batch that adds and removes the owner's rows (compare-and-set on
            # version, users/privacy_scylla.py), so contact_count always equals the number
            # of rows and bounds the list without counting it.
            """CREATE TABLE IF NOT EXISTS contacts (
                owner_id text,
                contact_id text,
                version bigint static,
                contact_count int static,
                PRIMARY KEY (owner_id, contact_id))""",
            # UpdateContacts request ids, with a TTL, so that a repeat changes nothing.
            """CREATE TABLE IF NOT EXISTS contact_requests (
                owner_id text,
                request_id text,
                contact_count int,
                PRIMARY KEY ((owner_id, request_id)))""",
            # presence: coalesced last seen (anchor) ----------------------------------------
            # One row per user, written at most once per presence.last_seen_write_interval,
            # with the last seen (in microseconds) as the write timestamp: never moves back.
            """CREATE TABLE IF NOT EXISTS last_seen (
                user_id text PRIMARY KEY,
                last_seen double,
                written_at double)""",
            # devices: read markers and tombstones (anchor) ---------------------------------
            # One partition per account; conversation is "u:<user id>" or "g:<group id>".
            # Only LWTs write here (IF NOT EXISTS, then IF <the values read>), so a marker
            # never moves back under concurrent updates (devices/sync_scylla.py).
            """CREATE TABLE IF NOT EXISTS read_markers (
                user_id text,
                conversation text,
                read_through_time double,
                read_through_server_message_id text,
                PRIMARY KEY ((user_id), conversation))""",
            # The claim of one tombstone per (account, conversation, message): only LWTs
            # write here (IF NOT EXISTS; IF scope = 1 to raise FOR_ME to FOR_EVERYONE), so
            # two devices deleting one message converge. TTL: the message retention.
            """CREATE TABLE IF NOT EXISTS tombstones_by_message (
                user_id text,
                conversation text,
                server_message_id text,
                scope int,
                delete_time double,
                deleted_by_user_id text,
                deleted_by_device_id int,
                expires_at double,
                PRIMARY KEY ((user_id), conversation, server_message_id))""",
            # The same tombstones in listing order (oldest first), written from the claim
            # (rewritten identically by a retry). TTL: the message retention.
            """CREATE TABLE IF NOT EXISTS tombstones (
                user_id text,
                delete_time double,
                conversation text,
                server_message_id text,
                scope int,
                deleted_by_user_id text,
                deleted_by_device_id int,
                expires_at double,
                PRIMARY KEY ((user_id), delete_time, conversation, server_message_id))""",
            # router: message origins and group logs (anchor) -------------------------------
            # Who sent a message, where and when, by server message id (a delete for
            # everyone is checked against it). Written before the send is claimed, so every
            # acknowledged send has one; TTL: the message retention.
            """CREATE TABLE IF NOT EXISTS message_origins (
                server_message_id text PRIMARY KEY,
                sender_user_id text,
                sender_device_id int,
                destination_user_id text,
                destination_group_id text,
                server_time double,
                expires_at double)""",
            # router: group messages, large-group logs (lead) ------------------------------
            """CREATE TABLE IF NOT EXISTS group_messages (
                group_id text,
                server_message_id text,
                sender_user_id text,
                sender_device_id int,
                server_time double,
                expires_at double,
                recipient_count int,
                PRIMARY KEY ((group_id, server_message_id)))""",
            # A large group's log: one partition per group. `head` (static) is the highest
            # position handed out; an append is a conditional batch on it that also writes
            # the entry, so entries become visible in position order and a reader at
            # position P never misses a lower one that commits later.
            """CREATE TABLE IF NOT EXISTS group_log (
                group_id text,
                position bigint,
                head bigint static,
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
                PRIMARY KEY (group_id, position))
                WITH CLUSTERING ORDER BY (position ASC)""",
            """CREATE TABLE IF NOT EXISTS group_log_by_message (
                group_id text,
                server_message_id text,
                position bigint,
                PRIMARY KEY (group_id, server_message_id))""",
        ),
    ),
    Migration(
        "receipt fields beside the inbox id lookup: an acknowledgement reads once",
        (
            # Written with every inbox row (router/scylla.py), so acknowledging reads only
            # inbox_by_message. Rows written before this version have them null and are
            # read from the inbox instead.
            AddColumns(
                "inbox_by_message",
                (
                    ("type", "int"),
                    ("sender_user_id", "text"),
                    ("sender_device_id", "int"),
                    ("destination_group_id", "text"),
                    ("server_time", "double"),
                ),
            ),
        ),
    ),
)

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version int PRIMARY KEY,
    description text,
    applied_at timestamp)"""
