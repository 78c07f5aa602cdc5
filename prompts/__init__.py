"""Prompt templates and description files shipped with llmskel (data, not code)."""
