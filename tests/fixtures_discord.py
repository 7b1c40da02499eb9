"""Offline Discord fixtures (filled by the offline Discord work)."""
