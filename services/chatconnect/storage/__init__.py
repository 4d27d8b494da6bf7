"""Storage shared by the embedded adapters: one SQLite database in WAL mode."""
