"""Rules, commands, queries and role grants of each domain (views -> domain -> models -> core)."""
