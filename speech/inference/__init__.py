"""Speech inference: engines, fair scheduling, batching lanes, the local service and the worker transport."""
