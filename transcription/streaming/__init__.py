"""Live streams on the Django side: the inference service built from settings, lifecycle, wire protocols."""
