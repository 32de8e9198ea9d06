"""Cessation tables: quitters, visits, correction tickets."""
