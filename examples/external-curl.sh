#!/usr/bin/env bash
# Run an external study with curl and jq alone: ask for a trial, report each epoch, tell.
#
#   TUNEBOARD_URL=http://127.0.0.1:8000 TUNEBOARD_API_KEY=tb_... examples/external-curl.sh
#
# The "training" is a made-up curve computed by awk; put your own program in its place.
# A 409 from ask without Retry-After means the study has no trial left to give.
set -euo pipefail

URL="${TUNEBOARD_URL:-http://127.0.0.1:8000}/api/v1"
AUTH="Authorization: Bearer ${TUNEBOARD_API_KEY:?set TUNEBOARD_API_KEY}"

api() {  # api METHOD PATH [JSON]: the response body; the HTTP status in $STATUS, headers in $HEADERS
  local out
  HEADERS="$(mktemp)"
  out="$(curl -sS -X "$1" "$URL$2" -H "$AUTH" -H 'Content-Type: application/json' \
         -D "$HEADERS" -w '\n%{http_code}' ${3:+--data "$3"})"
  STATUS="${out##*$'\n'}"
  BODY="${out%$'\n'*}"
}

api POST /studies '{
  "name": "curl-study",
  "objective": {"external": true, "metric": "val_accuracy", "direction": "maximize"},
  "search_space": {"lr": {"type": "float", "low": 0.0001, "high": 1.0, "log": true}},
  "sampler": {"type": "random", "seed": 7},
  "pruner": {"type": "median", "n_startup_trials": 2},
  "budget": {"n_trials": 5, "max_parallel": 1}
}'
[ "$STATUS" = 201 ] || { echo "create failed: $BODY" >&2; exit 1; }
STUDY="$(jq -r .id <<<"$BODY")"

while true; do
  api POST "/studies/$STUDY/trials/ask"
  if [ "$STATUS" = 409 ]; then
    WAIT="$(awk 'tolower($1) == "retry-after:" {print $2+0}' "$HEADERS")"
    [ -n "$WAIT" ] || break            # final: nothing left to give
    sleep "$WAIT"; continue
  fi
  [ "$STATUS" = 201 ] || { echo "ask failed: $BODY" >&2; exit 1; }
  NUMBER="$(jq -r .number <<<"$BODY")"
  LR="$(jq -r .params.lr <<<"$BODY")"
  STATE=complete
  for EPOCH in 0 1 2 3 4; do
    ACC="$(awk -v lr="$LR" -v e="$EPOCH" \
           'BEGIN { d = log(lr)/log(10) + 1.5; printf "%.6f", 0.5 + 0.4*exp(-d*d)*(1-exp(-(e+1)/2)) }')"
    api POST "/studies/$STUDY/trials/$NUMBER/report" \
        "{\"step\": $EPOCH, \"metrics\": {\"val_accuracy\": $ACC}}"
    [ "$STATUS" = 200 ] || { echo "report failed: $BODY" >&2; exit 1; }
    if [ "$(jq -r .should_prune <<<"$BODY")" = true ]; then STATE=pruned; break; fi
  done
  if [ "$STATE" = complete ]; then
    api POST "/studies/$STUDY/trials/$NUMBER/tell" "{\"state\": \"complete\", \"values\": $ACC}"
  else
    api POST "/studies/$STUDY/trials/$NUMBER/tell" '{"state": "pruned"}'
  fi
  [ "$STATUS" = 200 ] || { echo "tell failed: $BODY" >&2; exit 1; }
  echo "trial $NUMBER (lr=$LR): $STATE"
done

api GET "/studies/$STUDY"
jq -c '{study: .id, state, counts}' <<<"$BODY"
