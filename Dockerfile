# The collector in production shape; docker-compose.yml runs it beside PostgreSQL.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    BINOME_HOST=0.0.0.0 \
    BINOME_PORT=8000 \
    BINOME_DATA_DIR=/var/lib/binome

WORKDIR /app
COPY pyproject.toml README.md requirements.lock ./
COPY collector ./collector
COPY sql ./sql
COPY js-snippet/dist ./js-snippet/dist
COPY dashboard/index.html ./dashboard/index.html
COPY dashboard/dist ./dashboard/dist
# No demo/: the demo shop is for `make run` on a checkout (issue 24).
# What is deployed is pinned (issue 20): the runtime dependencies exactly as
# requirements.lock lists them, each checked against its hashes, then the
# project itself without resolving anything more. Editable, so sql/,
# js-snippet/dist/ and dashboard/ are found beside the package.
RUN pip install --require-hashes --no-deps -r requirements.lock \
 && pip install --no-deps -e . \
 && useradd --system --uid 10001 --no-create-home binome \
 && mkdir -p /var/lib/binome && chown binome /var/lib/binome

USER binome
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
CMD ["binome", "serve", "--workers", "2"]
