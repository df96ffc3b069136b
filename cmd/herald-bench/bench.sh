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
#                          streams-5000 streams-10000 streams-19500, "all" is
#                          every scenario of the issue (PostgreSQL ones need the URL)
#   BENCH_RUNS=3           runs of each scenario
#   BENCH_STREAMS=1000 BENCH_RATE=200 BENCH_DURATION=10s   the "load" scenario
#   BENCH_DATABASE_URL=    postgres://… for the PostgreSQL scenarios
#   BENCH_ARGS=            extra herald-bench flags for every scenario
#   BENCH_OUT=BENCHMARKS.md
#   BENCH_NOTES=cmd/herald-bench/bench-notes.md   included after the header
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
EXTRA=${BENCH_ARGS:-}
OUT=${BENCH_OUT:-BENCHMARKS.md}
NOTES=${BENCH_NOTES:-cmd/herald-bench/bench-notes.md}
DIR=bin/bench

# scenario_args prints the herald-bench flags of a scenario (the letters
# are the issue's scenarios).
scenario_args() {
	local db="" name=$1
	if [ "${name%-pg}" != "$name" ]; then # the PostgreSQL variant of a scenario
		need_db "$name" || return 1
		db="--database-url $DB"
		name=${name%-pg}
	fi
	case "$name" in
	load) echo "--streams $STREAMS --rate $RATE --duration $DURATION $db" ;;
	streams-*) echo "--streams ${name#streams-} --rate 0 --settle 8s $db" ;;      # (a) memory per stream, once the burst has settled
	unicast) echo "--streams 10000 --rate 1000 --duration 60s $db" ;;            # (b) p99, zero loss
	broadcast) echo "--streams 10000 --mode broadcast --rate 1 --count 5 $db" ;; # (c) time to last stream
	publish-rate) echo "--streams 100 --rate 6000 --duration 30s $db" ;;         # (d) with -pg: offers 6,000/s to show the target of 5,000 is met with room
	connect-rs256) echo "--rs256 --warm-cache --streams 10000 --rate 0 $db" ;;   # (e) new streams/s
	two-instances) echo "--instances 2 --streams 39000 --rate 1000 --duration 60s $db" ;; # (f) with -pg
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
		expanded="$expanded streams-5000 streams-10000 streams-19500 unicast broadcast connect-rs256"
		[ -n "$DB" ] && expanded="$expanded unicast-pg publish-rate-pg two-instances-pg"
	elif [ "$s" = streams ]; then
		expanded="$expanded streams-5000 streams-10000 streams-19500"
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

# A run that fails its checks (loss, duplicates, connect failures) still
# prints its report: it goes into BENCHMARKS.md with its problems, and the
# script exits non-zero at the end. A run that printed no report stops it.
failed=0
: >"$DIR/load.jsonl"
for s in $expanded; do
	args=$(scenario_args "$s")
	for i in $(seq "$RUNS"); do
		echo "+ herald-bench --label $s --spawn $args $EXTRA   (run $i of $RUNS)" >&2
		status=0
		# shellcheck disable=SC2086 # the flags are meant to split
		"$DIR/herald-bench" --label "$s" --spawn --herald-bin "$DIR/herald" $args $EXTRA >"$DIR/load-$s-$i.txt" || status=$?
		cat "$DIR/load-$s-$i.txt"
		last=$(tail -n 1 "$DIR/load-$s-$i.txt")
		if [ "${last:0:1}" != "{" ]; then
			echo "bench.sh: scenario $s printed no report (exit $status)" >&2
			exit 1
		fi
		echo "$last" >>"$DIR/load.jsonl"
		[ "$status" = 0 ] || failed=1
	done
done
if [ -s "$DIR/load.jsonl" ]; then
	report_args+=(--load "$DIR/load.jsonl")
fi
[ -f "$NOTES" ] && report_args+=(--notes "$NOTES")
"$DIR/herald-bench" report "${report_args[@]}" --out "$OUT"
echo "wrote $OUT" >&2
if [ "$failed" != 0 ]; then
	echo "bench.sh: some runs failed their checks; see Problems in $OUT" >&2
	exit 1
fi
