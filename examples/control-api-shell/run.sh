#!/usr/bin/env bash
# A third party's end-to-end check against mock-custodian using nothing but curl and jq: the way a
# suite in Java, Go, .NET or JavaScript drives it in CI. No Python, no plugin: the control API
# (/__sim/, X-Control-Token) for setup and time, PG&E's own API (mutual TLS) for everything else.
#
#   MOCK_URL=https://localhost:8444 MOCK_CONTROL_TOKEN=... ./run.sh
#
# MOCK_URL is the portal listener (the control API answers on both listeners); MOCK_CONTROL_TOKEN is
# printed at start-up, written to the data dir's server.json, or set with MOCK_CUSTODIAN_CONTROL_TOKEN.
# MOCK_CA (optional) is the CA bundle; without it the script downloads it once from /__sim/ca.pem
# (that single download cannot verify the server yet: it is what a fresh CI container has to do).
# Needs: bash, curl >= 7.76, jq.
set -euo pipefail

: "${MOCK_URL:?set MOCK_URL to the portal URL of the mock, e.g. https://localhost:8444}"
: "${MOCK_CONTROL_TOKEN:?set MOCK_CONTROL_TOKEN (printed at start-up, or in server.json)}"
CLIENT_ID="${CLIENT_ID:-00101}"   # Sunny Solar in the demo scenario
CUSTOMER="${CUSTOMER:-rivera}"
R=/GreenButtonConnect/espi/1_1/resource
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT

step() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; [ -f "$WORK/body" ] && head -c 600 "$WORK/body" >&2 && echo >&2; exit 1; }

if [ -n "${MOCK_CA:-}" ]; then
  cp "$MOCK_CA" "$WORK/ca.pem"
else
  curl -sSf --insecure -H "X-Control-Token: $MOCK_CONTROL_TOKEN" "$MOCK_URL/__sim/ca.pem" -o "$WORK/ca.pem"
fi

# The control API: JSON in, JSON out, the token in a header.
ctl() {
  local method=$1 path=$2; shift 2
  curl -sS --fail-with-body --cacert "$WORK/ca.pem" -H "X-Control-Token: $MOCK_CONTROL_TOKEN" \
       -H 'Content-Type: application/json' -X "$method" "$MOCK_URL/__sim$path" "$@"
}
# A call of PG&E's API as the third party: mutual TLS with the certificate chain and key.
pge() { curl -sS --cacert "$WORK/ca.pem" --cert "$WORK/chain.pem" --key "$WORK/key.pem" "$@"; }
# Same, printing only the status code (the body goes to $WORK/body).
pge_status() { pge -o "$WORK/body" -w '%{http_code}' "$@"; }

step "reset the mock to its scenario (world, tokens, clock, faults, logs)"
ctl POST /reset >/dev/null

step "credentials of $CLIENT_ID from /__sim/credentials"
ctl GET '/credentials?inline=pem' >"$WORK/creds.json"
API="$(jq -r .api_base_url "$WORK/creds.json")"
tp() { jq -r --arg c "$CLIENT_ID" ".third_parties[] | select(.client_id == \$c) | .$1" "$WORK/creds.json"; }
tp certificate_chain_pem >"$WORK/chain.pem"
tp key_pem >"$WORK/key.pem"
SECRET="$(tp client_secret)"
REDIRECT_URI="$(tp redirect_uri)"

step "client access token (client_credentials)"
CAT="$(pge -u "$CLIENT_ID:$SECRET" -X POST "$API/datacustodian/oauth/v2/token?grant_type=client_credentials" \
       | jq -r .client_access_token)"
[ -n "$CAT" ] && [ "$CAT" != null ] || fail "no client access token"

step "ReadServiceStatus"
[ "$(pge_status -H "Authorization: Bearer $CAT" "$API$R/ReadServiceStatus")" = 200 ] || fail "ReadServiceStatus"
grep -q '<currentStatus>1</currentStatus>' "$WORK/body" || fail "service not up"

step "retry through an injected 503"
ctl POST /faults -d '{"kind": "maintenance", "path": "*/ReadServiceStatus", "times": 1}' >/dev/null
code=""
for attempt in 1 2 3; do
  code="$(pge_status -H "Authorization: Bearer $CAT" "$API$R/ReadServiceStatus")"
  [ "$code" = 200 ] && break
  [ "$code" = 503 ] || fail "unexpected $code"
  sleep 0.2
done
[ "$code" = 200 ] || fail "still failing after retries"
[ "$(ctl GET '/requests?path=*/ReadServiceStatus' | jq -c '[.requests[].status]')" = "[200,503,200]" ] \
  || fail "request log does not show the 503 and the retry"

step "consent (control API shortcut), then the code exchange at PG&E's token endpoint"
ctl POST /authorizations -d "{\"customer\": \"$CUSTOMER\", \"client_id\": \"$CLIENT_ID\", \"exchange\": false}" \
  >"$WORK/consent.json"
CODE="$(jq -r .authorization_code "$WORK/consent.json")"
USAGE_POINT="$(jq -r '.service_agreements[0].usage_point_id' "$WORK/consent.json")"
pge -u "$CLIENT_ID:$SECRET" -X POST "$API/datacustodian/oauth/v2/token" \
    --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE" \
    --data-urlencode "redirect_uri=$REDIRECT_URI" >"$WORK/token.json"
AT="$(jq -r .access_token "$WORK/token.json")"
RT="$(jq -r .refresh_token "$WORK/token.json")"
SUBSCRIPTION="$(jq -r .resourceURI "$WORK/token.json" | sed 's#.*/##')"
[ "$AT" != null ] || fail "code exchange: $(cat "$WORK/token.json")"

# A two-day window ten days back, from the simulated clock, in PG&E's Zulu format.
read -r START END < <(ctl GET /clock | jq -r '(.epoch / 86400 | floor) * 86400 - 10 * 86400 | [., . + 2 * 86400]
                                              | map(todate) | join(" ")')

step "synchronous usage: Batch/Subscription/$SUBSCRIPTION/UsagePoint/$USAGE_POINT"
[ "$(pge_status -H "Authorization: Bearer $AT" \
     "$API$R/Batch/Subscription/$SUBSCRIPTION/UsagePoint/$USAGE_POINT?published-min=$START&published-max=$END")" = 200 ] \
  || fail "synchronous usage"
[ "$(grep -o 'IntervalReading>' "$WORK/body" | wc -l)" -gt 0 ] || fail "no IntervalReading in the feed"

step "asynchronous request; the notification lands in the record-only sink"
SINK="$MOCK_URL/__sim/sink/shell-$CLIENT_ID"
ctl PATCH "/third_parties/$CLIENT_ID" -d "{\"notification_uri\": \"$SINK\"}" >/dev/null
[ "$(pge_status -H "Authorization: Bearer $AT" -H "X-Transaction: shell-1" \
     "$API$R/Batch/Subscription/$SUBSCRIPTION?published-min=$START&published-max=$END")" = 202 ] || fail "async request"
ctl POST /jobs/release >/dev/null   # no waiting out PG&E's packaging delay
PACKAGE_URL=""
for _ in $(seq 1 100); do
  PACKAGE_URL="$(ctl GET "/sink/shell-$CLIENT_ID" | jq -r '.posts[0].body // empty' \
                 | grep -o 'https://[^<]*' | sed 's/&amp;/\&/g' | head -n 1 || true)"
  [ -n "$PACKAGE_URL" ] && break
  sleep 0.1
done
[ -n "$PACKAGE_URL" ] || fail "no notification arrived"
[ "$(pge_status -H "Authorization: Bearer $AT" "$PACKAGE_URL")" = 200 ] || fail "package retrieval"
grep -q 'IntervalReading>' "$WORK/body" || fail "empty package"

step "two hours later the access token has expired; refresh (the refresh token rotates)"
ctl POST /clock/advance -d '{"hours": 2}' >/dev/null
[ "$(pge_status -H "Authorization: Bearer $AT" "$API$R/Subscription/$SUBSCRIPTION/UsagePoint")" = 403 ] \
  || fail "expected 403 for the expired token"
pge -u "$CLIENT_ID:$SECRET" -X POST "$API/datacustodian/oauth/v2/token" \
    --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$RT" >"$WORK/token.json"
AT="$(jq -r .access_token "$WORK/token.json")"
[ "$(jq -r .refresh_token "$WORK/token.json")" != "$RT" ] || fail "refresh token did not rotate"
[ "$(pge_status -H "Authorization: Bearer $AT" "$API$R/Subscription/$SUBSCRIPTION/UsagePoint")" = 200 ] \
  || fail "refreshed token refused"

echo "ALL PASSED"
