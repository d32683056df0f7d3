"""The toolkit version; it is part of every output's provenance and of derived UIDs."""

__version__ = "0.1.0"
