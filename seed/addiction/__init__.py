"""Addiction-programme demo data: designated institutions, staff, cases, courses, records."""
