"""neurant-db: the multi-tenant PostgreSQL schema of NeurAnt and its migration runner."""

__version__ = "0.1.0"
