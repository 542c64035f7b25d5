# servewise's image. The SLO-report CronJob of every rendered bundle runs it as
# `servewise report --deployment NAMESPACE/NAME`, as user 10001 with a read-only root filesystem.
# Published by .github/workflows/release.yml on a version tag (ghcr.io/<owner>/servewise:<version>);
# build it yourself with: docker build -t registry.example.com/servewise:0.1.0 .
FROM python:3.11-slim-bookworm

WORKDIR /src
COPY pyproject.toml README.md ./
COPY planner planner
COPY gitops gitops
COPY kb kb
COPY server server
COPY templates templates
# A regular (not editable) install: the package, its templates, schemas and seed data land in site-packages,
# so the source tree can go.
RUN pip install --no-cache-dir . && cd / && rm -rf /src \
    && mkdir -p /var/lib/servewise && chown 10001:10001 /var/lib/servewise

# HOME (the knowledge base, settings) belongs to the user, so `docker run` works without a volume too;
# the CronJob mounts an emptyDir there as its root filesystem is read-only.
USER 10001:10001
WORKDIR /var/lib/servewise
ENV HOME=/var/lib/servewise PYTHONDONTWRITEBYTECODE=1
ENTRYPOINT ["servewise"]
CMD ["--help"]
