"""Cross-cutting machinery: scope, security, audit, exports, dates, roles."""
