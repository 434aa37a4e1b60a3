"""The admin dashboard: server-rendered pages over the core's services, and the payments export."""
