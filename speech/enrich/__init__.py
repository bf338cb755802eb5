"""Enrichment of final segments: speakers, sentiment, topics, profanity filter and redaction."""
