"""REST API of the tenants app, mounted under /api/v1/."""
