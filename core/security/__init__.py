"""Security manager, sessions and lockout, passwords, rate limits, roles and permission sync."""
