"""Transaction Status queries as a resource: asked of Daraja, answered asynchronously by a Result."""
