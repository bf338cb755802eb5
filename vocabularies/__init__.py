"""Named key-term vocabularies: a user's saved lists of key terms, chosen by name when a stream starts."""
