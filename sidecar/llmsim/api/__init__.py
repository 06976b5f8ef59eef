"""The pydantic models: the one source of truth for profile and scenario schemas.

This package imports only pydantic and the standard library (enforced by import-linter).
"""
