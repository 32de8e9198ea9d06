"""The framework: scope, the scoped datamodel, view and API bases, security, audit, export,
dates, files, imports, commands and workflows. It names no domain (import contracts in
pyproject.toml)."""
