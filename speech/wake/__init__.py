"""Wake words: a per-session gate before the segmenter (docs/wake_words.md)."""
