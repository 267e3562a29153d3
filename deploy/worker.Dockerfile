# syntax=docker/dockerfile:1
# The Celery worker's image, run by the ECS Fargate service of deploy/worker_service.py.
# Build from the repository root (the context; .dockerignore lets in only what is copied below):
#   docker build -f deploy/worker.Dockerfile -t telehealth-worker .
# No Docker engine runs where CI does: tests/deploy/test_worker_image_command.py runs this file's
# install steps and its exact command instead (docs/deployment.md, section 5).
#
# The tag pins Python's patch release and Debian's; pin its digest when you build
# (`docker buildx imagetools inspect python:3.11.14-slim-bookworm`, then FROM ...@sha256:...).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /build
COPY requirements.txt requirements-worker.txt ./
# Wheels only (no compiler needed, none installed); then the venv's own installers go, and its
# bytecode is written as unchecked hashes: the root file system is read-only, and nothing depends
# on the files' dates surviving the copy into the final stage.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir --only-binary=:all: -r requirements-worker.txt \
    && /opt/venv/bin/pip uninstall --yes pip setuptools \
    && /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /opt/venv/lib
# What the worker imports: chalicelib and local_worker, nothing else of the repository.
COPY chalicelib/ /app/chalicelib/
COPY local_worker/ /app/local_worker/
RUN /opt/venv/bin/python -m compileall -q --invalidation-mode unchecked-hash /app

FROM ${PYTHON_IMAGE}
# Names for deploy/worker_image.py's WORKER_USER (10001:10001): Celery looks the group up, and
# without an entry it warns that it runs "with superuser privileges" (it assumes root).
RUN groupadd --system --gid 10001 worker \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin worker
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# /tmp is the one writable path (a task volume; the root file system is read-only), so HOME too.
# The pool and concurrency are deploy/worker_image.py's defaults; the task definition sets both.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    WORKER_POOL=threads \
    WORKER_CONCURRENCY=16
WORKDIR /app
# deploy/worker_image.py's WORKER_USER, numeric: a runtime sees it is not root without the passwd file.
USER 10001:10001
# Celery's warm shutdown: running tasks finish, then the worker exits 0 (ECS waits stopTimeout).
STOPSIGNAL SIGTERM
# ECS runs no image health check (only a container definition's), and `celery inspect ping` would
# load the app and read its SSM parameters on every probe. A worker that exits is replaced by the
# service; one that takes nothing raises the worker-queue-age alarm (docs/deployment.md, section 11).
HEALTHCHECK NONE
# deploy/worker_image.py's WORKER_COMMAND: a shell expands the pool and concurrency, then `exec`
# hands PID and signals to Celery.
CMD ["sh", "-c", "exec celery -A local_worker worker --loglevel=INFO --pool=$WORKER_POOL --concurrency=$WORKER_CONCURRENCY --without-mingle --without-gossip"]
