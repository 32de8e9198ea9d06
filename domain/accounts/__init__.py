"""Accounts domain (A13): online applications, approval, the helpdesk."""
