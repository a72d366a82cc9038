# mock-custodian: the same server as `mock-custodian serve`, listening on all interfaces, as an
# unprivileged user that owns /data. Dependencies come from requirements.lock (exact versions; see
# docs/deployment.md, "Refreshing the lock"), never from the ranges in pyproject.toml.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MOCK_CUSTODIAN_DATA_DIR=/data \
    MOCK_CUSTODIAN_HOST=0.0.0.0

# The user the server runs as: no login, no password, owns only /data.
RUN groupadd --system --gid 10001 mock \
 && useradd --system --uid 10001 --gid mock --home-dir /data --no-create-home --shell /usr/sbin/nologin mock \
 && mkdir -p /data && chown mock:mock /data

WORKDIR /app
# 1. The pinned runtime dependencies, exactly (--no-deps: nothing outside the lock is installed).
COPY requirements.lock requirements-postgres.lock ./
RUN pip install --no-cache-dir --no-deps -r requirements.lock
# --build-arg POSTGRES=1 adds the pinned PostgreSQL driver (several instances on one database, docs/scale.md).
ARG POSTGRES=0
RUN if [ "$POSTGRES" = "1" ]; then pip install --no-cache-dir --no-deps -r requirements-postgres.lock; fi
# 2. The package itself, without resolving anything again; pip check proves the lock is complete.
COPY pyproject.toml README.md ./
COPY mock_custodian ./mock_custodian
COPY fixtures ./fixtures
# The package links mock_custodian/scenario/fixtures -> ../../fixtures; install resolves it into the wheel.
RUN pip install --no-cache-dir --no-deps . && pip check && rm -rf /app/build

USER mock
VOLUME ["/data"]
EXPOSE 8443 8444
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD python -c "import json,os,ssl,urllib.request; d=os.environ.get('MOCK_CUSTODIAN_DATA_DIR','/data'); i=json.load(open(os.path.join(d,'server.json'))); c=ssl.create_default_context(cafile=i['ca_bundle']); urllib.request.urlopen('https://127.0.0.1:%d/__sim/health' % i['portal_port'], context=c, timeout=2)"

# Names clients inside a compose network use go on the certificate: mock-custodian serve --san NAME
# (compose.yaml: api.pge.com and sharemydata.pge.com as network aliases).
ENTRYPOINT ["mock-custodian"]
CMD ["serve"]
