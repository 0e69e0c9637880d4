# beteiligte-sync: the service as a container image (docs/install.md; compose.yaml runs it with Redis).
#   docker build -t beteiligte-sync .        docker run --read-only -v state:/state --env-file .env ...
# Stage 1 builds the package into a venv; stage 2 is the slim runtime with that venv only (no compiler,
# no build backend, no sources), a non-root user, and /state as the only place it can write.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY . .
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-compile . \
 && /opt/venv/bin/beteiligte-sync --version

FROM python:3.11-slim
RUN useradd --system --uid 10001 --user-group --home-dir /state --no-create-home --shell /usr/sbin/nologin bsync \
 && mkdir /state && chown bsync:bsync /state && chmod 0750 /state \
 && chmod o-w /tmp /var/tmp
COPY --from=build /opt/venv /opt/venv
# HOST 0.0.0.0 inside the container: compose publishes the port on the host's 127.0.0.1 only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 PORT=3111 STATE_DIR=/state HOME=/state XDG_STATE_HOME=/state
USER 10001:10001
WORKDIR /state
VOLUME ["/state"]
EXPOSE 3111
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-m", "entrypoints.healthcheck"]
# Exec form: serve runs as PID 1 and gets docker stop's SIGTERM itself (it finishes and stops cleanly).
ENTRYPOINT ["beteiligte-sync"]
CMD ["serve"]
