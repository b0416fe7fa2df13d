"""Database backends: Django's own, with what Orchestra's standalone settings need on top."""
