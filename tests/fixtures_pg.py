"""PostgreSQL fixtures (filled by the database work)."""
