"""Agatston, volume, mass and lesion scores under named conventions, and risk categories."""
