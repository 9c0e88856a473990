"""GUI tests run offscreen (set before Qt starts, in tests/conftest.py)."""
