"""Server-rendered pages: home, live, history and a session."""
