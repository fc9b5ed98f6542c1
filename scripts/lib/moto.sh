# Sourced by scripts/test and scripts/mutants: starts moto (the DynamoDB-, SQS- and
# Streams-speaking test server from .venv-ci) on a free loopback port, exports MOTO_ENDPOINT,
# and stops it when the calling script exits.
start_moto() {
    local tools="$PWD/.venv-ci/bin" port
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
    mkdir -p target
    "$tools/moto_server" -H 127.0.0.1 -p "$port" >target/moto.log 2>&1 &
    moto_pid=$!
    trap 'kill "$moto_pid" 2>/dev/null || true' EXIT
    export MOTO_ENDPOINT="http://127.0.0.1:$port"
    python3 - "$MOTO_ENDPOINT" <<'PY'
import sys, time, urllib.request
for _ in range(150):
    try:
        urllib.request.urlopen(sys.argv[1] + "/moto-api/", timeout=1)
        sys.exit(0)
    except Exception:
        time.sleep(0.2)
sys.exit("moto did not start; see target/moto.log")
PY
}
