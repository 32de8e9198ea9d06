"""Platform tables: users, audit trail, export jobs, sessions."""
