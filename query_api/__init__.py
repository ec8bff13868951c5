"""Read API (FastAPI) over the agent-collector store."""
