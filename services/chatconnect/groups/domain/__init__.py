"""Group membership rules, free of transport and storage."""
