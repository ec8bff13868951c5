# Mirrors README's quick start: install with pip, start with `agent-collector serve`.
# The lake extra lets the same image run as a DuckLake replica (README "Scaling out").
FROM python:3.11-slim
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -c constraints.txt ".[lake]"
# Inside a container the listeners must bind beyond loopback; the database lives on a volume.
ENV AGENT_COLLECTOR_HOST=0.0.0.0 \
    AGENT_COLLECTOR_DB=/data/agent-collector.duckdb
VOLUME /data
EXPOSE 4317 4318 8000
STOPSIGNAL SIGTERM
CMD ["agent-collector", "serve"]
