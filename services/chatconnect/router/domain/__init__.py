"""The send path and device inboxes, free of transport."""
