"""OpenAI's audio transcription API: POST /v1/audio/transcriptions, GET /v1/models."""
