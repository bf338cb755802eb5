"""The history REST API (DRF): sessions, exports, segment search, usage, API keys and uploads."""
