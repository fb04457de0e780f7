"""Numbered schema migrations: ``NNNN_name.py`` modules with ``OPERATIONS`` (statements safe to re-run)."""
