"""View and API bases, list rows, navbar, form fields, FAB patches, bad-input answers."""
