# secrets-sidecar container image.
#
#   docker build -t ecs-secrets-sidecar .
#
# The base is chosen by tag; pin it by digest for release builds (docs/container-image.md):
#   docker build --build-arg PYTHON_IMAGE=python:3.13-slim@sha256:<digest> -t ecs-secrets-sidecar .
ARG PYTHON_IMAGE=python:3.13-slim

# --- build: the wheel of this project and its runtime dependencies, in a virtualenv without pip -----------
# botocore keeps only its top-level data files (endpoints, partitions, retry and default configuration: all
# loaded at client creation) and the models of the services the sidecar creates clients for: secretsmanager,
# ssm, s3, kms, sts. A client for any other service raises UnknownServiceError. `lint-task-definition` reads
# the shape of ECS RegisterTaskDefinition from the ecs model: of it, only service-2.json.gz stays (~160 KB).
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# The pinned dependencies first, in a layer of their own: a change to the code alone does not reinstall them.
COPY docker/constraints.txt docker/constraints.txt
RUN python -m venv --without-pip /opt/sidecar \
 && pip --python /opt/sidecar/bin/python install --no-cache-dir --no-compile --requirement docker/constraints.txt
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip --python /opt/sidecar/bin/python install --no-cache-dir --no-compile \
        --constraint docker/constraints.txt /wheels/*.whl \
 && site=$(/opt/sidecar/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))') \
 && find "$site/botocore/data" -mindepth 1 -maxdepth 1 -type d \
        ! -name secretsmanager ! -name ssm ! -name s3 ! -name kms ! -name sts ! -name ecs -exec rm -rf {} + \
 && find "$site/botocore/data/ecs" -type f ! -name service-2.json.gz -delete \
 && /opt/sidecar/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/sidecar \
 && /opt/sidecar/bin/secrets-sidecar --version \
 && /opt/sidecar/bin/python -c 'from sidecar.lint.model import input_shape; input_shape()'

# --- runtime ------------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
# VERSION is sidecar/__init__.py's __version__ and REVISION the git commit: `make image`, the test suite and
# the release workflow pass both; a plain `docker build` leaves the defaults.
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="ecs-secrets-sidecar" \
      org.opencontainers.image.description="Run-once sidecar that writes AWS Secrets Manager, SSM Parameter Store and S3 secrets to files for Amazon ECS tasks" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/ecs-secrets-sidecar/ecs-secrets-sidecar" \
      org.opencontainers.image.documentation="https://github.com/ecs-secrets-sidecar/ecs-secrets-sidecar/tree/main/docs" \
      org.opencontainers.image.base.name="docker.io/library/python:3.13-slim"

# No installer in the runtime image: pip, setuptools, wheel and ensurepip's bundled wheels go.
# uid/gid 10001: fixed, so task definitions and file ownership can name it; above the system accounts
# (< 1000) and the first users that images and hosts create (1000, 1001, ...), so it is nobody else by accident.
# The passwd entry makes ECS "user": "10001" run with gid 10001 (without one, the gid would be 0).
# /run/secrets is owned by it: Docker (and ECS for a task's bind-mount volume) copies the ownership of the
# image's directory into an empty volume mounted there, which lets the non-root sidecar write into it.
RUN python -m pip uninstall --yes --quiet pip setuptools wheel \
 && rm -rf "$(python -c 'import ensurepip, os; print(os.path.dirname(ensurepip.__file__))')" \
           /usr/share/python-wheels \
 && groupadd --system --gid 10001 sidecar \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin sidecar \
 && install -d -o 10001 -g 10001 -m 0755 /run/secrets

COPY --from=build /opt/sidecar /opt/sidecar
ENV PATH=/opt/sidecar/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
VOLUME ["/run/secrets"]
USER 10001:10001
ENTRYPOINT ["secrets-sidecar"]
CMD ["run"]
