"""Template helpers of the web UI."""
