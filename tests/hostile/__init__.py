"""Hostile input: the server keeps answering and keeps what it stored."""
