"""AssemblyAI's Universal-Streaming: /v3/ws and /v3/token."""
