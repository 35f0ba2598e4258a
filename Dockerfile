# The sla-operator image. Two stages: the first makes a virtualenv with the operator and its
# dependencies, the second copies only that virtualenv onto a clean base: no compiler, no
# pip, no pip cache. Runs as user 65532 and needs no writable root file system (state goes
# to a mounted volume in local mode; cluster mode writes nothing to disk).
#
#   make image                      # builds with podman on a local Debian base (no registry)
#   docker build -t sla-operator .  # where registries are reachable: the default base below
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md /src/
COPY operator /src/operator
# README.md keeps this valid where build/wheels does not exist (a wildcard may match nothing
# only beside a source that exists).
COPY README.md build/wheels* /src/wheels/
# Wheels made on the host (scripts/build-image.sh) make the build work without a network;
# without them pip takes the dependencies from the package index.
RUN python3 -m venv /opt/sla-operator \
 && if ls /src/wheels/*.whl >/dev/null 2>&1; then \
        /opt/sla-operator/bin/pip install --no-index --find-links /src/wheels sla-operator; \
    else \
        /opt/sla-operator/bin/pip install /src; \
    fi \
 && /opt/sla-operator/bin/pip uninstall --yes pip \
 && /opt/sla-operator/bin/python -m compileall -q /opt/sla-operator

FROM ${BASE_IMAGE}
COPY --from=build /opt/sla-operator /opt/sla-operator
ENV PATH=/opt/sla-operator/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
EXPOSE 9090 8080
ENTRYPOINT ["sla-operator"]
CMD ["run"]
