FROM python:3.11-slim

# The service's own user: not root, and not nobody (who owns nothing it could write to). The
# code stays root's, read-only to the service; what it writes goes to the data volume.
RUN groupadd --system --gid 10001 stagegate \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /data stagegate

WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain ./domain
COPY projections ./projections
COPY api ./api
COPY infra ./infra
RUN pip install --no-cache-dir . \
    && mkdir -p /data \
    && chown 10001:10001 /data

# The default store is a SQLite file in the data volume, whatever folder a command runs in;
# compose points STAGEGATE_DATABASE_URL at PostgreSQL instead.
ENV STAGEGATE_HOST=0.0.0.0 \
    STAGEGATE_PORT=8000 \
    STAGEGATE_DATABASE_URL=sqlite:////data/stagegate.db
VOLUME /data
EXPOSE 8000
USER 10001:10001
# python, not curl: the slim image has no curl.
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["stagegate", "serve"]
