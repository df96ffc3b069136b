#!/usr/bin/env bash
# The Socket.IO peer (the systems Herald replaces, rebuilt in Node with
# socket.io 4.8; see its README) for bench.sh's "socketio" scenario:
#
#   peer-socketio.sh install SRC DEST
#       copies the peer from SRC into DEST (a writable folder: it writes its
#       key and employees there) and runs `npm ci`. Exits 3, saying why, when
#       SRC, node or npm is missing, so bench.sh can skip the scenario.
#   peer-socketio.sh run DEST N RATE DURATION SETTLE
#       starts the peer's issuer (azure mode) and server on free loopback
#       ports, runs its load tool (load.js) for N connections and RATE
#       notifications/s for DURATION seconds, memory read SETTLE seconds
#       after the ramp, stops both by PID, and prints load.js's report as
#       one JSON line, the last line of stdout, with the load average before
#       the run added ("loadavg").
#   peer-socketio.sh herald DEST HERALD_BIN N RATE DURATION SETTLE
#       the same load tool, unchanged, against Herald's /socket.io/: a Herald
#       (HERALD_BIN serve, SQLite in DEST) whose directory holds the peer's
#       employees and which trusts the peer's issuer (azure) or secret
#       (cookie), and load.js with peer-load-herald.js preloaded, which
#       turns its publishes to the peer's POST /internal/notify into
#       Herald's ephemeral POST /notifications and answers its
#       /internal/stats (see that file). The report is load.js's, with
#       "server": "herald" and "loadavg" added.
#
# BENCH_PEER_MODE=azure (RS256 tokens from the peer's issuer) or cookie (HS256).
set -euo pipefail
script_dir=$(cd "$(dirname "$0")" && pwd)

die_skip() {
	echo "peer-socketio.sh: $*" >&2
	exit 3
}

install_peer() {
	local src=$1 dest=$2
	[ -f "$src/package-lock.json" ] && [ -f "$src/load.js" ] || die_skip "no Socket.IO peer in $src (BENCH_PEER_DIR)"
	command -v node >/dev/null 2>&1 || die_skip "node is not installed"
	command -v npm >/dev/null 2>&1 || die_skip "npm is not installed"
	mkdir -p "$dest"
	# The shared copy is read-only: copy the files, not their modes.
	(cd "$src" && tar --exclude=node_modules --exclude=results -cf - .) | (cd "$dest" && tar --no-same-permissions -xf -)
	chmod -R u+w "$dest"
	(cd "$dest" && npm ci --no-audit --no-fund --loglevel=error >&2) || die_skip "npm ci failed in $dest"
}

free_port() {
	node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

pids=()
stop_all() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do
		# Herald closes its streams gracefully within 10 s.
		for _ in $(seq 1 75); do kill -0 "$p" 2>/dev/null || break; sleep 0.2; done
		kill -9 "$p" 2>/dev/null || true
	done
}

wait_http() {
	for _ in $(seq 1 100); do
		curl -sf -o /dev/null "$1" && return 0
		sleep 0.1
	done
	echo "peer-socketio.sh: $1 did not answer" >&2
	return 1
}

run_peer() {
	local dest=$1 n=$2 rate=$3 duration=$4 settle=$5
	local mode=${BENCH_PEER_MODE:-azure}
	cd "$dest"
	# The hard limit (20,000 here) is the most 10,000 connections plus the
	# tool's own need.
	ulimit -n "$(ulimit -Hn)"
	[ -f employees.json ] || node gen-employees.js 20000 employees.json >&2
	local port issuer_port load
	port=$(free_port)
	issuer_port=$(free_port)
	export AZURE_ISSUER_BASE_URL="http://127.0.0.1:$issuer_port" AZURE_AUDIENCE=api://herald-bench-peer
	export JWT_SECRET=herald-bench-peer-secret EMPLOYEES_FILE=$dest/employees.json
	trap stop_all EXIT
	mkdir -p results
	if [ "$mode" = azure ]; then
		ISSUER_PORT=$issuer_port node issuer.js >results/issuer.log 2>&1 &
		pids+=($!)
		wait_http "http://127.0.0.1:$issuer_port/stats"
	fi
	PORT=$port AUTH_MODE=$mode node --expose-gc server.js >results/server.log 2>&1 &
	local srv=$!
	pids+=("$srv")
	wait_http "http://127.0.0.1:$port/healthz"
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	rm -f results/run.json
	timeout 900 node load.js --mode "$mode" --url "http://127.0.0.1:$port" --pid "$srv" --n "$n" \
		--rate "$rate" --duration "$duration" --settle-s "$settle" --transport websocket \
		--aud "$AZURE_AUDIENCE" --secret "$JWT_SECRET" --employees "$EMPLOYEES_FILE" \
		--out results/run.json >&2
	[ -s results/run.json ] || {
		echo "peer-socketio.sh: load.js wrote no report" >&2
		return 1
	}
	LOADAVG=$load node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));r.loadavg=process.env.LOADAVG;console.log(JSON.stringify(r))' results/run.json
}

# run_herald drives Herald's /socket.io/ with the peer's load.js.
run_herald() {
	local dest=$1 bin=$2 n=$3 rate=$4 duration=$5 settle=$6
	local mode=${BENCH_PEER_MODE:-azure}
	bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")
	cd "$dest"
	ulimit -n "$(ulimit -Hn)"
	[ -f employees.json ] || node gen-employees.js 20000 employees.json >&2
	cp "$script_dir/peer-load-herald.js" .
	local port issuer_port load db=$dest/herald
	port=$(free_port)
	issuer_port=$(free_port)
	export AZURE_ISSUER_BASE_URL="http://127.0.0.1:$issuer_port" AZURE_AUDIENCE=api://herald-bench-peer
	export JWT_SECRET=herald-bench-peer-secret-of-32-bytes EMPLOYEES_FILE=$dest/employees.json
	trap stop_all EXIT
	mkdir -p results
	rm -rf "$db"
	mkdir -p "$db"
	# The peer's employees, in Herald's directory: id, email user<id>@example.com
	# (azure tokens name it), username u<id> (cookie tokens name it).
	node -e 'const [f,n]=process.argv.slice(1);const e=JSON.parse(require("fs").readFileSync(f,"utf8")).slice(0,Number(n));
console.log("id,email,username,name,roles");for(const x of e)console.log(`${x.id},${x.email},u${x.id},User ${x.id},peer`)' \
		employees.json "$n" >"$db/employees.csv"
	DATABASE_URL="sqlite:$db/herald.db" "$bin" employees import "$db/employees.csv" >&2
	if [ "$mode" = azure ]; then
		ISSUER_PORT=$issuer_port node issuer.js >results/issuer.log 2>&1 &
		pids+=($!)
		wait_http "http://127.0.0.1:$issuer_port/stats"
	fi
	local azure_env=()
	[ "$mode" = azure ] && azure_env=("AZURE_ISSUER_BASE_URL=$AZURE_ISSUER_BASE_URL" "AZURE_AUDIENCE=$AZURE_AUDIENCE")
	# Load runs measure Herald, not its rate limits.
	env "${azure_env[@]}" HTTP_ADDR="127.0.0.1:$port" DATABASE_URL="sqlite:$db/herald.db" LOG_LEVEL=warn \
		PUBLISH_RATE=0 CONNECT_RATE=0 STATE_RATE=0 "$bin" serve >results/herald.log 2>&1 &
	local srv=$!
	pids+=("$srv")
	wait_http "http://127.0.0.1:$port/readyz"
	local token
	token=$("$bin" token --user herald-bench-peer --role service --ttl 2h)
	load=$(cut -d' ' -f1-3 /proc/loadavg)
	rm -f results/herald.json
	HERALD_TOKEN=$token HERALD_PID=$srv timeout 900 node -r ./peer-load-herald.js load.js --mode "$mode" \
		--url "http://127.0.0.1:$port" --pid "$srv" --n "$n" --rate "$rate" --duration "$duration" --settle-s "$settle" \
		--transport websocket --aud "$AZURE_AUDIENCE" --secret "$JWT_SECRET" --employees "$EMPLOYEES_FILE" \
		--out results/herald.json >&2
	[ -s results/herald.json ] || {
		echo "peer-socketio.sh: load.js against Herald wrote no report (results/herald.log:)" >&2
		tail -n 20 results/herald.log >&2
		return 1
	}
	LOADAVG=$load node -e 'const r=JSON.parse(require("fs").readFileSync(process.argv[1],"utf8"));r.loadavg=process.env.LOADAVG;r.server="herald";console.log(JSON.stringify(r))' results/herald.json
}

case "${1:-}" in
install) install_peer "$2" "$3" ;;
run) run_peer "$2" "$3" "$4" "$5" "$6" ;;
herald) run_herald "$2" "$3" "$4" "$5" "$6" "$7" ;;
*)
	echo "usage: peer-socketio.sh install SRC DEST | run DEST N RATE DURATION SETTLE | herald DEST HERALD_BIN N RATE DURATION SETTLE" >&2
	exit 2
	;;
esac
