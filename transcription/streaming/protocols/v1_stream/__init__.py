"""/v1/stream (seeds/003): a control socket and an audio socket that meet over the channel layer."""
