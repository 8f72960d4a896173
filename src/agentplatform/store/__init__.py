"""Durable state: SQLAlchemy tables, the database handle, and owner-scoped repositories."""
