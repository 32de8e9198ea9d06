"""Addiction case-management tables (A1–A14): designations, patients and cases, courses,
treatment records and their forms, staff licences and training."""
