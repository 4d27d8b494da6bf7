"""Account logic: phone verification, registration and device sessions."""
