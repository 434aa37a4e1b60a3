"""The admin dashboard: server-rendered pages at /dashboard, calling the core's services."""
