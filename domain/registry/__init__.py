"""Registry domain: national persons, institutions, practitioners."""
