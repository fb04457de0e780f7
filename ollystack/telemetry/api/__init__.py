"""REST read API under /api/v1/."""
