# One image for every modelbus service; the compose file picks the command.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install --no-cache-dir uv \
 && uv pip install --system --no-cache -r requirements.lock
COPY shared ./shared
COPY services ./services
COPY schemas ./schemas
RUN uv pip install --system --no-cache --no-deps . \
 && useradd --create-home --uid 10001 modelbus \
 && mkdir -p /data && chown modelbus /data
USER modelbus
ENTRYPOINT ["modelbus"]
