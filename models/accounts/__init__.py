"""Account applications (A13)."""
