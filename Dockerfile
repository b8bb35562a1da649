FROM python:3.12-slim
RUN apt-get update && apt-get install -y --no-install-recommends git && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY reconciler ./reconciler
RUN pip install --no-cache-dir .
RUN useradd --create-home --uid 10001 reconciler
USER reconciler
ENV RECONCILER_HOME=/home/reconciler/data
ENTRYPOINT ["reconciler"]
CMD ["--help"]
