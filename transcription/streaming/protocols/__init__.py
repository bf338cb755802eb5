"""One module per wire protocol: its format (parsing, encoding events) and its consumer."""
