#!/usr/bin/env bash
# The whole gateway on this machine, on loopback: a throwaway PostgreSQL cluster, a tansu broker
# (Kafka protocol, sqlite storage), the control plane (serving the web console), one data plane wired
# to it over the config stream, a demo webhook, a dispatcher (`data-plane dispatch`) and a demo action
# server (deploy/demo-action-server.py) registered as the action `send_email`. Everything lives under
# .stack/ (git-ignored).
#
#   deploy/stack.sh start    install what is missing, build, start everything, print what to try
#   deploy/stack.sh status   what runs, and the endpoints
#   deploy/stack.sh stop     stop exactly the processes this script started
#
# Endpoints, the admin token and the demo webhook URL are written as KEY=VALUE lines to .stack/env
# (`set -a; source .stack/env; set +a`).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state="$root/.stack"
envfile="$state/env"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/webhook-gateway/target}
export PATH="$HOME/.cargo/bin:$PATH"
services="$root/deploy/services.sh"
TOPIC=${DP_KAFKA_TOPIC:-webhook-gateway.events}
INVOCATIONS_TOPIC=${DISPATCH_INVOCATION_TOPIC:-webhook-gateway.action-invocations}
RESULTS_TOPIC=${DISPATCH_RESULT_TOPIC:-webhook-gateway.action-results}

say() { printf '\033[1m%s\033[0m\n' "$*" >&2; }
alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
pidof_file() { cat "$state/$1.pid" 2>/dev/null || true; }
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

wait_http() { # url seconds
  local deadline=$((SECONDS + $2))
  until curl -fsS -o /dev/null "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.3
  done
}

cmd_status() {
  if [ ! -f "$envfile" ]; then echo "stack: not started (deploy/stack.sh start)"; return 1; fi
  local name pid
  for name in postgres tansu control-plane data-plane dispatcher demo-action; do
    pid=$(pidof_file "$name")
    if alive "$pid"; then echo "  $name: running (pid $pid)"; else echo "  $name: NOT running"; fi
  done
  echo "endpoints ($envfile):"
  sed 's/^/  /' "$envfile"
}

cmd_stop() {
  local name pid
  for name in dispatcher demo-action data-plane control-plane tansu; do
    pid=$(pidof_file "$name")
    if alive "$pid"; then
      kill -TERM "$pid"
      for _ in $(seq 1 100); do alive "$pid" || break; sleep 0.1; done
      alive "$pid" && kill -KILL "$pid"
      echo "stopped $name (pid $pid)"
    fi
    rm -f "$state/$name.pid"
  done
  if [ -f "$state/pg/postmaster.pid" ]; then
    bash "$services" stop-postgres "$state/pg"
    echo "stopped postgres"
  fi
  rm -f "$state/postgres.pid" "$envfile"
}

start_bg() { # name logfile command...
  local name=$1 log=$2; shift 2
  nohup "$@" >"$log" 2>&1 </dev/null &
  echo $! >"$state/$name.pid"
}

cmd_start() {
  if [ -f "$envfile" ] && alive "$(pidof_file data-plane)" && alive "$(pidof_file dispatcher)"; then
    say "the stack is already running"; cmd_status; return 0
  fi
  cmd_stop >/dev/null 2>&1 || true
  # Throwaway: every start begins with an empty database and an empty broker.
  rm -rf "$state/pg" "$state/pg.initdb.log" "$state/tansu" "$state/snapshot-cache.bin"
  NEED_GRPCURL=1 bash "$services" install
  command -v curl >/dev/null || { apt-get update -qq && apt-get install -y -qq curl; }
  mkdir -p "$state"; chmod 755 "$state"

  say "building control-plane and data-plane…"
  (cd "$root" && cargo build --locked -p control-plane -p data-plane)
  local bin="$CARGO_TARGET_DIR/debug"
  say "building the console…"
  bash "$root/console/build.sh"

  say "starting postgres and tansu…"
  local kv
  kv=$(bash "$services" postgres "$state/pg"); eval "$(echo "$kv" | sed 's/^/local /')"
  echo "$POSTGRES_PID" >"$state/postgres.pid"
  kv=$(bash "$services" tansu "$state/tansu" sqlite); eval "$(echo "$kv" | sed 's/^/local /')"
  echo "$TANSU_PID" >"$state/tansu.pid"
  local t
  for t in "$TOPIC" "$INVOCATIONS_TOPIC" "$RESULTS_TOPIC"; do
    "$(bash "$services" tansu-bin)" topic create "$t" --broker "tcp://$KAFKA_BOOTSTRAP" --partitions 3 >/dev/null 2>&1 || true
  done

  local cp_port cp_admin dp_port dp_admin dispatch_admin action_port
  cp_port=$(bash "$services" free-port); cp_admin=$(bash "$services" free-port)
  dp_port=$(bash "$services" free-port); dp_admin=$(bash "$services" free-port)
  dispatch_admin=$(bash "$services" free-port); action_port=$(bash "$services" free-port)
  local org ws app master jwt_key admin_token
  org=$(python3 -c 'import uuid; print(uuid.uuid4())')
  ws=$(python3 -c 'import uuid; print(uuid.uuid4())')
  app=$(python3 -c 'import uuid; print(uuid.uuid4())')
  master="k1=$(python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')"
  jwt_key=$(python3 -c 'import os,base64; print(base64.urlsafe_b64encode(os.urandom(48)).decode())')
  admin_token="gwt_$(python3 -c 'import os,base64; print(base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("="))')"
  (umask 077; printf '%s\n' "$master" >"$state/master-keys"; printf '%s\n' "$jwt_key" >"$state/jwt-key")

  say "starting the control plane on 127.0.0.1:$cp_port…"
  "$bin/control-plane" migrate --database-url "$DATABASE_URL" >"$state/migrate.log" 2>&1
  DATABASE_URL="$DATABASE_URL" CP_LISTEN="127.0.0.1:$cp_port" CP_METRICS_LISTEN="127.0.0.1:$cp_admin" \
  CP_MASTER_KEYS_FILE="$state/master-keys" CP_JWT_SIGNING_KEY_FILE="$state/jwt-key" \
  CP_PUBLIC_BASE_URL="http://127.0.0.1:$dp_port" CP_BOOTSTRAP_TOKEN="$admin_token" CP_BOOTSTRAP_ORGANIZATION_ID="$org" \
  CP_KAFKA_BOOTSTRAP="$KAFKA_BOOTSTRAP" CP_KAFKA_TOPIC="$TOPIC" CP_CONSOLE_DIR="$root/console/dist" \
  CP_ACTIONS_ALLOW_HTTP=true CP_ACTIONS_ALLOW_CIDRS=127.0.0.1/32 \
    start_bg control-plane "$state/control-plane.log" "$bin/control-plane" serve
  wait_http "http://127.0.0.1:$cp_admin/healthz" 30 || { tail -20 "$state/control-plane.log" >&2; exit 1; }

  local A="127.0.0.1:$cp_port" jwt H
  jwt=$(grpcurl -plaintext -d "{\"api_token\":\"$admin_token\"}" "$A" webhook.gateway.v1.AuthService/ExchangeToken | json '["jwtToken"]')
  H="authorization: Bearer $jwt"
  local dp_token
  dp_token=$(grpcurl -plaintext -H "$H" -d "{\"organization_id\":\"$org\",\"role\":\"DATA_PLANE\",\"name\":\"local data plane\"}" \
    "$A" webhook.gateway.v1.AdminService/CreateApiToken | json '["apiToken"]')
  (umask 077; printf '%s\n' "$dp_token" >"$state/data-plane-token")

  say "starting the data plane on 127.0.0.1:$dp_port…"
  DP_LISTEN="127.0.0.1:$dp_port" DP_ADMIN_LISTEN="127.0.0.1:$dp_admin" DP_KAFKA_BOOTSTRAP="$KAFKA_BOOTSTRAP" \
  DP_KAFKA_TOPIC="$TOPIC" DP_CONTROL_PLANE_URL="http://$A" DP_CONTROL_PLANE_TOKEN_FILE="$state/data-plane-token" \
  DP_SNAPSHOT_CACHE="$state/snapshot-cache.bin" DP_ID="local-data-plane" \
    start_bg data-plane "$state/data-plane.log" "$bin/data-plane"
  wait_http "http://127.0.0.1:$dp_admin/readyz" 60 || { tail -20 "$state/data-plane.log" >&2; exit 1; }

  say "creating the demo webhook (GENERIC, bound to a start event, activated)…"
  local appref wh url
  appref="{\"organization_id\":\"$org\",\"workspace_id\":\"$ws\",\"app_id\":\"$app\"}"
  wh=$(grpcurl -plaintext -H "$H" -d "{\"app\":$appref,\"name\":\"demo-orders\",\"provider\":\"GENERIC\",\"description\":\"created by deploy/stack.sh\"}" \
    "$A" webhook.gateway.v1.WebhookService/CreateWebhook | json '["id"]')
  grpcurl -plaintext -H "$H" -d "{\"app\":$appref,\"process_definition_id\":\"order-intake\",\"project_id\":\"demo\",\"branch\":\"main\",\"process_version\":\"1\",\"bindings\":[{\"node_id\":\"start\",\"node_kind\":\"MESSAGE_START_EVENT\",\"webhook_id\":\"$wh\"}]}" \
    "$A" webhook.gateway.v1.TriggerService/CommitTriggerBindings >/dev/null
  grpcurl -plaintext -H "$H" -d "{\"webhook_id\":\"$wh\"}" "$A" webhook.gateway.v1.TriggerService/ActivateTrigger >/dev/null
  url=$(grpcurl -plaintext -H "$H" -d "{\"webhook_id\":\"$wh\"}" "$A" webhook.gateway.v1.WebhookService/GetWebhookUrl | json '["url"]')

  say "creating an HMAC key, starting the demo action server on 127.0.0.1:$action_port and registering send_email…"
  local key_json key_id key_value action_url action_id=""
  action_url="http://127.0.0.1:$action_port/send_email"
  if key_json=$(grpcurl -plaintext -H "$H" -d "{\"app\":$appref,\"label\":\"deploy/stack.sh\"}" "$A" webhook.gateway.v1.ActionService/CreateHmacKey 2>"$state/actions.err"); then
    key_id=$(echo "$key_json" | json '["key"]["id"]'); key_value=$(echo "$key_json" | json '["value"]')
    (umask 077; printf '%s %s\n' "$key_id" "$key_value" >"$state/demo-action-keys")
    start_bg demo-action "$state/demo-action.log" python3 "$root/deploy/demo-action-server.py" "$action_port" "$state/demo-action-keys"
    local deadline=$((SECONDS + 15))
    until [ "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d '{}' "$action_url" || true)" = 400 ]; do
      [ $SECONDS -lt $deadline ] || { tail -20 "$state/demo-action.log" >&2; exit 1; }
      sleep 0.2
    done
    action_id=$(grpcurl -plaintext -H "$H" -d "{\"app\":$appref,\"name\":\"send_email\",\"description\":\"Sends an e-mail (the demo action server of deploy/stack.sh)\",\"webhook_url\":\"$action_url\",\"json_schema\":{\"type\":\"object\",\"properties\":{\"to\":{\"type\":\"string\"},\"subject\":{\"type\":\"string\"}},\"required\":[\"to\"]}}" \
      "$A" webhook.gateway.v1.ActionService/RegisterAction | json '["id"]')
  else
    say "the control plane refused CreateHmacKey ($(head -c 300 "$state/actions.err")); the dispatcher runs without the demo action"
  fi

  say "starting the dispatcher (admin 127.0.0.1:$dispatch_admin)…"
  DISPATCH_ADMIN_LISTEN="127.0.0.1:$dispatch_admin" DISPATCH_KAFKA_BOOTSTRAP="$KAFKA_BOOTSTRAP" \
  DISPATCH_INVOCATION_TOPIC="$INVOCATIONS_TOPIC" DISPATCH_RESULT_TOPIC="$RESULTS_TOPIC" \
  DISPATCH_ALLOW_HTTP=true DISPATCH_ALLOW_CIDRS=127.0.0.1/32 \
  DP_CONTROL_PLANE_URL="http://$A" DP_CONTROL_PLANE_TOKEN_FILE="$state/data-plane-token" DP_ID="local-dispatcher" \
    start_bg dispatcher "$state/dispatcher.log" "$bin/data-plane" dispatch
  wait_http "http://127.0.0.1:$dispatch_admin/readyz" 60 || { tail -20 "$state/dispatcher.log" >&2; exit 1; }

  cat >"$envfile" <<ENV
GRPC_ADDR=$A
CONSOLE_URL=http://$A/
CONTROL_PLANE_METRICS=http://127.0.0.1:$cp_admin/metrics
DATA_PLANE_URL=http://127.0.0.1:$dp_port
DATA_PLANE_ADMIN=http://127.0.0.1:$dp_admin
KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP
KAFKA_TOPIC=$TOPIC
DATABASE_URL=$DATABASE_URL
ADMIN_API_TOKEN=$admin_token
ORGANIZATION_ID=$org
WORKSPACE_ID=$ws
APP_ID=$app
DEMO_WEBHOOK_ID=$wh
DEMO_WEBHOOK_URL=$url
ACTION_INVOCATIONS_TOPIC=$INVOCATIONS_TOPIC
ACTION_RESULTS_TOPIC=$RESULTS_TOPIC
DISPATCHER_ADMIN=http://127.0.0.1:$dispatch_admin
DEMO_ACTION_ID=$action_id
DEMO_ACTION_URL=$action_url
GATEWAY_ACTIONS=$bin/gateway-actions
ENV
  chmod 600 "$envfile"
  # Wait until the demo webhook has reached the data plane over the config stream.
  local deadline=$((SECONDS + 30)) code=000
  while [ $SECONDS -lt $deadline ]; do
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'content-type: application/json' -d '{"ping":true}' "$url" || true)
    [ "$code" = 200 ] && break
    sleep 0.3
  done
  [ "$code" = 200 ] || { say "the demo webhook did not become reachable (last status $code); see $state/*.log"; exit 1; }

  cat <<TXT

The stack is up. Endpoints and the admin token are in .stack/env:   set -a; source .stack/env; set +a

Console: http://$A/   (sign in with ADMIN_API_TOKEN from .stack/env; the demo app is $app)

Try:
  # the gRPC API (health, reflection, every service)
  grpcurl -plaintext \$GRPC_ADDR list
  grpcurl -plaintext \$GRPC_ADDR describe webhook.gateway.v1.WebhookService

  # a JWT for the admin token, then the Manage Triggers view
  JWT=\$(grpcurl -plaintext -d "{\"api_token\":\"\$ADMIN_API_TOKEN\"}" \$GRPC_ADDR webhook.gateway.v1.AuthService/ExchangeToken | python3 -c 'import json,sys; print(json.load(sys.stdin)["jwtToken"])')
  grpcurl -plaintext -H "authorization: Bearer \$JWT" -d "{\"app\":{\"organization_id\":\"\$ORGANIZATION_ID\",\"workspace_id\":\"\$WORKSPACE_ID\",\"app_id\":\"\$APP_ID\"}}" \$GRPC_ADDR webhook.gateway.v1.TriggerService/ListTriggers

  # send an event to the demo webhook (GENERIC: the API key in the URL is the authentication)
  curl -i -X POST "\$DEMO_WEBHOOK_URL" -H 'content-type: application/json' -d '{"orderId":"ORD-12345","amount":299.99}'

  # call the demo action through the dispatcher: produce an invocation, then read its result
  # (the demo action server verifies the signature as Flowent's docs describe; see .stack/demo-action.log)
  set -a; source .stack/env; set +a
  RID=\$(\$GATEWAY_ACTIONS invoke --action send_email --parameters '{"to":"ops@example.com","subject":"hello"}')
  \$GATEWAY_ACTIONS results --request-id \$RID
  # invalid parameters never reach the action server: status INVALID_PARAMETERS
  \$GATEWAY_ACTIONS results --request-id \$(\$GATEWAY_ACTIONS invoke --action send_email --parameters '{"to":42}')
  # register more actions, and see what registration refuses: README.md, "API examples"; docs/actions.md

  # read the topic (3 partitions; records are keyed, so look at each)
  for p in 0 1 2; do $(bash "$services" tansu-bin) cat consume \$KAFKA_TOPIC --broker tcp://\$KAFKA_BOOTSTRAP --partition \$p --max-wait-time-ms 500; done

  # health and metrics
  curl \$DATA_PLANE_ADMIN/readyz; curl -s \$DATA_PLANE_ADMIN/metrics | head; curl -s \$CONTROL_PLANE_METRICS | grep gateway_config
  curl \$DISPATCHER_ADMIN/readyz; curl -s \$DISPATCHER_ADMIN/metrics | grep -v '^#' | head -20

  deploy/stack.sh status    # what runs
  deploy/stack.sh stop      # stop everything this script started
Logs: .stack/*.log
TXT
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: deploy/stack.sh [start|status|stop]" >&2; exit 2 ;;
esac
