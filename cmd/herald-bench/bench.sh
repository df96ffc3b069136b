#!/usr/bin/env bash
# Runs Herald's micro-benchmarks and load scenarios and writes BENCHMARKS.md
# with the medians, the commands and the machine. `make bench` calls it;
# every setting is an environment variable (README, section Benchmarks):
#
#   BENCH_COUNT=3          runs of each micro-benchmark (-count)
#   BENCH_TIME=1s          -benchtime of each run
#   BENCH_MICRO=1          0 skips the micro-benchmarks
#   BENCH_SCENARIOS=load   load scenarios, space-separated (see scenario_args);
#                          NAME-pg runs NAME on BENCH_DATABASE_URL, "streams" is
#                          streams-5000 streams-10000 streams-19500 ("ws-streams"
#                          the same over WebSocket: ws-5000 …), "all" is
#                          every scenario of the issue (PostgreSQL ones need the URL)
#   BENCH_RUNS=3           runs of each scenario
#   BENCH_STREAMS=1000 BENCH_RATE=200 BENCH_DURATION=10s   the "load" scenario
#   BENCH_OLD_ROWS=1000000 BENCH_RETENTION_DURATION=300s BENCH_RETENTION_PG_DURATION=300s
#                          the "retention" scenario: the unicast load (10,000
#                          streams, 1,000/s) over that many old notifications,
#                          as "retention-off" (RETENTION=0) and "retention"
#                          (the sweep deletes them while the run publishes; the
#                          duration must outlast the sweep, or the run fails
#                          saying how many were left)
#   BENCH_DATABASE_URL=    postgres://… for the PostgreSQL scenarios
#   BENCH_ARGS=            extra herald-bench flags for every scenario
#   BENCH_OUT=BENCHMARKS.md  sections (## headings) this run does not write
#                          are kept from the existing file
#   BENCH_NOTES=cmd/herald-bench/bench-notes.md   included after the header
#
# The "socketio" scenario runs the Socket.IO peer and Herald side by side,
# one after the other in each of BENCH_RUNS rounds (peer-socketio.sh):
#   BENCH_PEER_DIR=../shared/peers/socketio   the peer (copied to a temp dir,
#                          `npm ci`); the scenario is skipped, saying why,
#                          without it or without node and npm
#   BENCH_PEER_STREAMS=10000 BENCH_PEER_RATE=1000 BENCH_PEER_DURATION=20
#                          connections, ephemeral messages/s, seconds
#   BENCH_PEER_SETTLE=8    seconds between the ramp and the memory reading
#   BENCH_PEER_MODE=azure  the peer's auth (azure: RS256, Herald gets --rs256
#                          too; cookie: HS256 both)
#   BENCH_PEER_TRANSPORTS="sse ws socketio"   Herald's transports (socketio
#                          only where herald-bench has --transport socketio)
#   BENCH_PEER_LOADJS=1    also drive Herald's /socket.io/ with the peer's
#                          own load.js, after the peer in each round (0: not)
set -euo pipefail
cd "$(dirname "$0")/../.."

GO=${GO:-go}
COUNT=${BENCH_COUNT:-3}
BENCHTIME=${BENCH_TIME:-1s}
MICRO=${BENCH_MICRO:-1}
SCENARIOS=${BENCH_SCENARIOS:-load}
RUNS=${BENCH_RUNS:-3}
STREAMS=${BENCH_STREAMS:-1000}
RATE=${BENCH_RATE:-200}
DURATION=${BENCH_DURATION:-10s}
DB=${BENCH_DATABASE_URL:-}
OLD_ROWS=${BENCH_OLD_ROWS:-1000000}
RETENTION_DURATION=${BENCH_RETENTION_DURATION:-300s}
RETENTION_PG_DURATION=${BENCH_RETENTION_PG_DURATION:-300s}
EXTRA=${BENCH_ARGS:-}
OUT=${BENCH_OUT:-BENCHMARKS.md}
NOTES=${BENCH_NOTES:-cmd/herald-bench/bench-notes.md}
DIR=bin/bench
PEER_DIR=${BENCH_PEER_DIR:-../shared/peers/socketio}
PEER_STREAMS=${BENCH_PEER_STREAMS:-10000}
PEER_RATE=${BENCH_PEER_RATE:-1000}
PEER_DURATION=${BENCH_PEER_DURATION:-20}
PEER_SETTLE=${BENCH_PEER_SETTLE:-8}
PEER_MODE=${BENCH_PEER_MODE:-azure}
PEER_TRANSPORTS=${BENCH_PEER_TRANSPORTS:-sse ws socketio}
PEER_LOADJS=${BENCH_PEER_LOADJS:-1}

# scenario_args prints the herald-bench flags of a scenario (the letters
# are the issue's scenarios).
scenario_args() {
	local db="" name=$1 retention=$RETENTION_DURATION
	if [ "${name%-pg}" != "$name" ]; then # the PostgreSQL variant of a scenario
		need_db "$name" || return 1
		db="--database-url $DB"
		name=${name%-pg}
		retention=$RETENTION_PG_DURATION
	fi
	case "$name" in
	load) echo "--streams $STREAMS --rate $RATE --duration $DURATION $db" ;;
	streams-*) echo "--streams ${name#streams-} --rate 0 --settle 8s $db" ;;      # (a) memory per stream, once the burst has settled
	ws-*) echo "--transport ws --streams ${name#ws-} --rate 0 --settle 8s $db" ;; # (a) the same over WebSocket
	unicast) echo "--streams 10000 --rate 1000 --duration 60s $db" ;;            # (b) p99, zero loss
	unicast-ephemeral) echo "--streams 10000 --rate 1000 --duration 60s --ephemeral $db" ;; # server CPU per ephemeral publish
	broadcast) echo "--streams 10000 --mode broadcast --rate 1 --count 5 $db" ;; # (c) time to last stream
	publish-rate) echo "--streams 100 --rate 6000 --duration 30s $db" ;;         # (d) with -pg: offers 6,000/s to show the target of 5,000 is met with room
	connect-rs256) echo "--rs256 --warm-cache --streams 10000 --rate 0 $db" ;;   # (e) new streams/s
	two-instances) echo "--instances 2 --streams 39000 --rate 1000 --duration 60s $db" ;; # (f) with -pg
	retention) echo "--streams 10000 --rate 1000 --duration $retention --old-rows $OLD_ROWS $db" ;; # p99 while the sweep deletes the old rows…
	retention-off) echo "--streams 10000 --rate 1000 --duration $retention --old-rows $OLD_ROWS --server-env RETENTION=0 $db" ;; # …and without the sweep
	*)
		echo "bench.sh: unknown scenario $1" >&2
		return 1
		;;
	esac
}
need_db() {
	if [ -z "$DB" ]; then
		echo "bench.sh: scenario $1 needs BENCH_DATABASE_URL=postgres://…" >&2
		return 1
	fi
}

# "streams" is the three sizes of scenario (a).
expanded=""
for s in $SCENARIOS; do
	if [ "$s" = all ]; then
		expanded="$expanded streams-5000 streams-10000 streams-19500 ws-5000 ws-10000 ws-19500 unicast unicast-ephemeral broadcast connect-rs256"
		[ -n "$DB" ] && expanded="$expanded unicast-pg publish-rate-pg two-instances-pg"
	elif [ "$s" = streams ]; then
		expanded="$expanded streams-5000 streams-10000 streams-19500"
	elif [ "$s" = ws-streams ]; then
		expanded="$expanded ws-5000 ws-10000 ws-19500"
	elif [ "$s" = retention ] || [ "$s" = retention-pg ]; then # with its baseline
		expanded="$expanded ${s/retention/retention-off} $s"
	else
		expanded="$expanded $s"
	fi
done

mkdir -p "$DIR"
"$GO" build -o "$DIR/herald" ./cmd/herald
"$GO" build -o "$DIR/herald-bench" ./cmd/herald-bench

report_args=()
if [ "$MICRO" != 0 ]; then
	pkgs="./sse ./auth ./store/sqlite"
	micro_cmd="go test -run '^\$' -bench . -benchmem -count $COUNT -benchtime $BENCHTIME $pkgs"
	if [ -n "$DB" ]; then # the PostgreSQL store's benchmarks need a server
		pkgs="$pkgs ./store/postgres"
		micro_cmd="TEST_DATABASE_URL=… go test -run '^\$' -bench . -benchmem -count $COUNT -benchtime $BENCHTIME $pkgs"
	fi
	echo "+ $micro_cmd" >&2
	# shellcheck disable=SC2086 # the packages are meant to split
	TEST_DATABASE_URL="$DB" "$GO" test -run '^$' -bench . -benchmem -count "$COUNT" -benchtime "$BENCHTIME" $pkgs | tee "$DIR/micro.txt"
	report_args+=(--micro "$DIR/micro.txt" --micro-command "$micro_cmd")
fi

# run_herald runs one herald-bench load run and appends its JSON report to
# the file $1; the remaining arguments are its label and flags.
run_herald() {
	local file=$1 label=$2 i=$3
	shift 3
	echo "+ herald-bench --label $label --spawn $*   (run $i of $RUNS)" >&2
	local status=0 out="$DIR/load-$label-$i.txt"
	"$DIR/herald-bench" --label "$label" --spawn --herald-bin "$DIR/herald" "$@" >"$out" || status=$?
	cat "$out"
	local last
	last=$(tail -n 1 "$out")
	if [ "${last:0:1}" != "{" ]; then
		echo "bench.sh: scenario $label printed no report (exit $status)" >&2
		exit 1
	fi
	echo "$last" >>"$file"
	[ "$status" = 0 ] || failed=1
}

# side_by_side is the "socketio" scenario: in each round the peer, then
# Herald over each transport, with the same connections and messages.
side_by_side() {
	local tmp status=0 t i
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/herald-peer-XXXXXX")
	# shellcheck disable=SC2064 # the path is fixed now
	trap "rm -rf '$tmp'" EXIT
	echo "+ cmd/herald-bench/peer-socketio.sh install $PEER_DIR $tmp" >&2
	cmd/herald-bench/peer-socketio.sh install "$PEER_DIR" "$tmp/peer" || status=$?
	if [ "$status" = 3 ]; then
		echo "bench.sh: skipping the socketio scenario (see above); $OUT keeps its earlier comparison" >&2
		return 0
	fi
	[ "$status" = 0 ] || exit 1
	local transports="" auth="" help
	help=$("$DIR/herald-bench" -h 2>&1 || true)
	for t in $PEER_TRANSPORTS; do
		if [ "$t" = socketio ] && [[ $help != *socketio* ]]; then
			side_args+=(--side-missing "socketio=herald-bench has no --transport socketio yet")
			continue
		fi
		transports="$transports $t"
	done
	[ "$PEER_MODE" = azure ] && auth=--rs256
	for i in $(seq "$RUNS"); do
		echo "+ peer-socketio.sh run $PEER_STREAMS connections, $PEER_RATE/s for ${PEER_DURATION}s   (round $i of $RUNS)" >&2
		status=0
		BENCH_PEER_MODE=$PEER_MODE cmd/herald-bench/peer-socketio.sh run "$tmp/peer" "$PEER_STREAMS" "$PEER_RATE" "$PEER_DURATION" "$PEER_SETTLE" >"$DIR/peer-$i.txt" || status=$?
		last=$(tail -n 1 "$DIR/peer-$i.txt")
		if [ "$status" != 0 ] || [ "${last:0:1}" != "{" ]; then
			echo "bench.sh: the Socket.IO peer's run printed no report (exit $status)" >&2
			exit 1
		fi
		echo "$last" >>"$DIR/peer.jsonl"
		if [ "$PEER_LOADJS" != 0 ]; then
			echo "+ peer-socketio.sh herald: the peer's load.js against Herald's /socket.io/   (round $i of $RUNS)" >&2
			status=0
			BENCH_PEER_MODE=$PEER_MODE cmd/herald-bench/peer-socketio.sh herald "$tmp/peer" "$DIR/herald" "$PEER_STREAMS" "$PEER_RATE" "$PEER_DURATION" "$PEER_SETTLE" >"$DIR/peer-herald-$i.txt" || status=$?
			last=$(tail -n 1 "$DIR/peer-herald-$i.txt")
			if [ "$status" != 0 ] || [ "${last:0:1}" != "{" ]; then
				echo "bench.sh: load.js against Herald printed no report (exit $status)" >&2
				exit 1
			fi
			echo "$last" >>"$DIR/peer.jsonl"
		fi
		for t in $transports; do
			# shellcheck disable=SC2086 # the flags are meant to split
			run_herald "$DIR/side.jsonl" "socketio-$t" "$i" --transport "$t" $auth --streams "$PEER_STREAMS" \
				--rate "$PEER_RATE" --duration "${PEER_DURATION}s" --ephemeral --settle "${PEER_SETTLE}s" $EXTRA
		done
	done
	side_args+=(--peer "$DIR/peer.jsonl" --side "$DIR/side.jsonl" --side-transports "$PEER_TRANSPORTS")
	rm -rf "$tmp"
	trap - EXIT
}

# A run that fails its checks (loss, duplicates, connect failures) still
# prints its report: it goes into BENCHMARKS.md with its problems, and the
# script exits non-zero at the end. A run that printed no report stops it.
failed=0
side_args=()
: >"$DIR/load.jsonl"
: >"$DIR/peer.jsonl"
: >"$DIR/side.jsonl"
for s in $expanded; do
	if [ "$s" = socketio ]; then
		side_by_side
		continue
	fi
	args=$(scenario_args "$s")
	for i in $(seq "$RUNS"); do
		# shellcheck disable=SC2086 # the flags are meant to split
		run_herald "$DIR/load.jsonl" "$s" "$i" $args $EXTRA
	done
done
if [ -s "$DIR/load.jsonl" ]; then
	report_args+=(--load "$DIR/load.jsonl")
fi
report_args+=("${side_args[@]}")
[ -f "$NOTES" ] && report_args+=(--notes "$NOTES")
if [ "$MICRO" = 0 ] && [ ! -s "$DIR/load.jsonl" ] && [ "${#side_args[@]}" = 0 ]; then
	echo "bench.sh: nothing was measured; $OUT is unchanged" >&2
	exit 0
fi
"$DIR/herald-bench" report "${report_args[@]}" --keep "$OUT" --out "$OUT"
echo "wrote $OUT" >&2
if [ "$failed" != 0 ]; then
	echo "bench.sh: some runs failed their checks; see Problems in $OUT" >&2
	exit 1
fi
