"""The admin dashboard: server-rendered pages, and the charts drawn on the server."""
