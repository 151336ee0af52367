"""Storage: the only package that imports SQLAlchemy. SQLite and PostgreSQL."""
