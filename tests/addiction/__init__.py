"""Tests of the addiction case-management programme (A1–A14)."""
