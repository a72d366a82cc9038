# mock-custodian: the same server as `mock-custodian serve`, listening on all interfaces.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MOCK_CUSTODIAN_DATA_DIR=/data \
    MOCK_CUSTODIAN_HOST=0.0.0.0

WORKDIR /app
COPY pyproject.toml README.md ./
COPY mock_custodian ./mock_custodian
COPY fixtures ./fixtures
# The package links mock_custodian/fixtures -> ../fixtures; install resolves it into the wheel.
# EXTRAS="[postgres]" adds the PostgreSQL driver (examples/shared-deployment).
ARG EXTRAS=""
RUN pip install --no-cache-dir ".${EXTRAS}" && rm -rf /app/build

VOLUME ["/data"]
EXPOSE 8443 8444
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
  CMD python -c "import json,ssl,urllib.request; i=json.load(open('/data/server.json')); c=ssl.create_default_context(cafile=i['ca_bundle']); urllib.request.urlopen('https://127.0.0.1:%d/__sim/health' % i['portal_port'], context=c, timeout=2)"

# Names clients inside a compose network use can be added: docker run ... mock-custodian serve --san mock-pge
ENTRYPOINT ["mock-custodian"]
CMD ["serve"]
