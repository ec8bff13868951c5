"""agent-collector: OTLP and GATI ingest of AI-agent traces into DuckDB."""

__version__ = "0.1.0"
