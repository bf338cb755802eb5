"""Operations: health, runtime config and metrics endpoints, start-up and graceful shutdown."""
