"""Addiction case-management programme (A1–A14): built from issue 14 on; never imports
domain.cessation, nor it this (import contract in pyproject.toml)."""
