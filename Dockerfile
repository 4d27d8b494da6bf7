# syntax=docker/dockerfile:1
# The ChatConnect image: every service (`chatconnect serve <component>`, `chatconnect up`)
# and the Kubernetes operator (`kopf run -m chatconnect_operator.main`, the `operator`
# extra). Build: docker build -t ghcr.io/chatconnect/chatconnect:0.1.0 .

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: generate the protobuf stubs, build the wheel, install it into a venv ------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The stub generator's tools (tools/gen_protos.py wants protoc-gen-mypy next to python).
RUN python -m venv /opt/gen \
 && /opt/gen/bin/pip install "grpcio-tools==1.85.1" "mypy-protobuf==5.1.0"

WORKDIR /src
COPY pyproject.toml README.md ./
COPY protos/ protos/
COPY tools/gen_protos.py tools/gen_protos.py
COPY services/ services/
COPY operator/ operator/

RUN /opt/gen/bin/python tools/gen_protos.py \
 && /opt/gen/bin/pip wheel --no-deps --wheel-dir /wheels .

# The runtime venv: the wheel with its dependencies and the operator extra, nothing else.
RUN python -m venv /opt/chatconnect \
 && wheel="$(ls /wheels/chatconnect-*.whl)" \
 && /opt/chatconnect/bin/pip install "${wheel}[operator]" \
 && /opt/chatconnect/bin/pip uninstall --yes pip

# --- runtime: the venv on a slim Python, as an unprivileged user ------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="ChatConnect" \
      org.opencontainers.image.description="The server side of a WhatsApp/Signal-class messenger: gRPC services and the Kubernetes operator." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/chatconnect/chatconnect" \
      org.opencontainers.image.url="https://github.com/chatconnect/chatconnect" \
      org.opencontainers.image.vendor="ChatConnect"

RUN groupadd --system --gid 10001 chatconnect \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/chatconnect \
      --no-create-home --shell /usr/sbin/nologin chatconnect \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/chatconnect

COPY --from=builder /opt/chatconnect /opt/chatconnect

# Listen on every interface inside the container; keep state in the data volume.
ENV PATH=/opt/chatconnect/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CHATCONNECT_SERVER__LISTEN=0.0.0.0:7600 \
    CHATCONNECT_SERVER__DATA_DIR=/var/lib/chatconnect

WORKDIR /var/lib/chatconnect
USER 10001:10001
EXPOSE 7600

ENTRYPOINT ["chatconnect"]
CMD ["up"]
