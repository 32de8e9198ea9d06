"""Registry screens: institutions, contracts, practitioners, reference data, persons."""
