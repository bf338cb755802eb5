"""Stored audio of sessions: what is kept, where (Django's "audio" storage), how it is served and purged."""
