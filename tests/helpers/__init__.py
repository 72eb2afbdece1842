"""Helpers the tests share, one concept per module."""
