"""Cessation programme: visit rules C1-C4, corrections C5-C7, statistics C9, batch upload."""
