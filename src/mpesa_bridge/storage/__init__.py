"""Storage adapter: SQLAlchemy 2 async over SQLite (aiosqlite, WAL) or PostgreSQL (asyncpg)."""
