"""Reference data loaders."""
