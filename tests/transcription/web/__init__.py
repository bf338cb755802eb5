"""Web UI tests: Django test-client page tests and real-browser (Chromium) end-to-end tests."""
