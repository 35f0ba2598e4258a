"""kopf handlers and settings: thin wiring between the API server and the engine."""
