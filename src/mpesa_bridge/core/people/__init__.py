"""The people who use the dashboard: accounts, their roles per project, sessions, one-time links."""
