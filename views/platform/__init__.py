"""Platform screens: home, audit log, export progress."""
