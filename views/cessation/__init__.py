"""Cessation screens: visits, quitters, corrections, reports, statistics, upload."""
