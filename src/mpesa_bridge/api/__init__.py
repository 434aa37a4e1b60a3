"""The HTTP adapter: the public v1 API, the admin API and the Daraja callback routes."""
