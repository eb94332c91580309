"""Cante to text."""
