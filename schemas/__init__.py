"""Table schemas: defined once here, used by writers, readers, QA and docs."""
