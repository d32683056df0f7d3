"""Checks and reports on run outputs and releases."""
