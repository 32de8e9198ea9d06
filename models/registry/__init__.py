"""Registry tables: counties, levels, institutions, contracts, practitioners, persons."""
