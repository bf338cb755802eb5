"""Cloud-compatible endpoints: OpenAI, Deepgram and AssemblyAI's APIs over our sessions, keys and storage."""
