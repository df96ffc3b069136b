#!/bin/sh
# Mutation testing of Herald's core packages with gremlins (make mutate).
# Not part of make test or CI: it is slow and CPU-heavy (every mutant is a
# build and a run of its package's tests). It runs one package at a time,
# niced, and writes each package's results to bin/mutate/<name>.json.
#
#   MUTATE_PKGS     packages to mutate (default: the list below)
#   MUTATE_WORKERS  parallel mutants (default 1: the tests themselves use sockets and timers)
#   MUTATE_TIMEOUT_COEFFICIENT  gremlins --timeout-coefficient (default 3): a
#                   mutant times out at this many times the package's first,
#                   covered test run; 10 on a loaded machine, where a run's
#                   time varies more than threefold
#   MUTATE_DIFF     a branch or commit: mutate only lines changed since it
#                   (gremlins --diff; for a package below the module root
#                   it compares git's paths with the package's and skips
#                   every mutant: bound runs with MUTATE_EXCLUDE instead,
#                   or see the git wrapper in round3-a.md)
#   MUTATE_EXCLUDE  more files to leave out, regexps on the path inside the
#                   package's directory (e.g. "center\.go push\.go"), to
#                   bound a run to the files that changed
#   MUTATE_BUDGET   the whole run's time bound in minutes (default 30; 0: none).
#                   The time left is shared among the packages left; a
#                   package whose share ends is stopped (SIGINT, then KILL
#                   30 s later) and its log keeps the mutants it reached,
#                   counted up to the stop (the ones in flight then are
#                   not results). A
#                   full measurement of a package takes longer: run it alone
#                   with MUTATE_BUDGET=0, bounded by MUTATE_EXCLUDE.
#   TEST_DATABASE_URL  PostgreSQL: without it store/postgres's tests skip and
#                   its mutants count as not covered
#
# store is three runs: store (the domain types: the directory alone),
# store/sqlite and store/postgres. gremlins times a mutant out at the
# coefficient times its first, covered run of the whole directory; one run
# for store/... would give a SQLite mutant the PostgreSQL suite's minutes.
# A mutant runs only its own package's tests (-failfast), so the domain
# types are mutated under store's own tests; the PostgreSQL suite is kept out
# of that run's coverage (it would only cost minutes).
#
# Cost: a mutant is a build and a run of its package's tests. Measured on
# two shared cores at a load average of 40: store 58 mutants in 25 min (one
# worker), store/sqlite's writer.go and directory.go 71 in 38 min (two
# workers); a PostgreSQL mutant takes minutes. A full run does not fit in
# 30 minutes on such a machine: bound it with MUTATE_PKGS and
# MUTATE_EXCLUDE (to the files a change touched).
#
# Each package's mutants are limited to its logic files; what is left out,
# and why, is below. Surviving mutants judged equivalent are listed in
# internal/mutate/EQUIVALENT.md.
# No --test-cpu: gremlins v0.6.0 passes it to go test as one argument
# ("-cpu 1"), the package fails to set up, and every mutant is reported
# killed.
set -eu
GO=${GO:-go}
# -count=1: gremlins times mutants out at a multiple of its first, covered
# run; a run answered from go test's cache (the package unchanged since
# the last run) takes under a second, and every mutant that does not fail
# at once is reported timed out.
GOFLAGS="${GOFLAGS:-} -count=1"
export GOFLAGS
GREMLINS_VERSION=v0.6.0
PKGS=${MUTATE_PKGS:-"sse auth store store/sqlite store/postgres handlers"}
WORKERS=${MUTATE_WORKERS:-1}
COEFF=${MUTATE_TIMEOUT_COEFFICIENT:-3}
OUT=bin/mutate
mkdir -p "$OUT"

# Files left out, per package:
# - sse: the transports' plumbing (poller, conns, serve, framing, encoding,
#   the reader) is exercised over real sockets, where a mutant mostly hangs
#   or times out rather than fails, at 10+ s each; the state machine, the
#   hub and WebSocket parsing are mutated.
# - handlers: only the stream and publish files (events, ws, socketio,
#   source, fanout, publish, publish_center); the notification center's
#   routes, Web Push (push.go, handlers/webpush) and the rest are left out.
# - store (gremlins takes the directory with its subdirectories: the
#   domain types, SQLite and PostgreSQL): store/storetest and
#   store/postgres/pgtest are test helpers, not production code, and the migrations' SQL is not Go (a test for the
#   publish function's boundary stands in: TestInlineRecipientsBoundary).
excludes() {
	case $1 in
	sse) for f in conn poller_linux poller_other serve encode event framing reader wheel end; do printf -- "-E %s\\.go " "$f"; done ;;
	handlers) for f in center decode demo docs employee_check employees handlers health inbox metrics middleware notification problem push ratelimit session web; do printf -- "-E ^%s\\.go " "$f"; done; printf -- "-E ^webpush/ " ;;
	store) printf -- "-E ^sqlite/ -E ^postgres/ -E ^storetest/ " ;;
	store/postgres) printf -- "-E ^pgtest/ " ;;
	*) ;;
	esac
}

extra=""
for e in ${MUTATE_EXCLUDE:-}; do extra="$extra -E $e"; done

diff_flag=""
if [ -n "${MUTATE_DIFF:-}" ]; then diff_flag="--diff $MUTATE_DIFF"; fi

BUDGET=${MUTATE_BUDGET:-30}
deadline=$(( $(date +%s) + BUDGET * 60 ))
left=$(echo $PKGS | wc -w)

# tally counts the outcomes gremlins logged, for a run stopped early (a
# finished run prints its own summary too). Lines after "Shutting down"
# are left out: the mutants in flight then had their tests interrupted,
# and gremlins reports them as it happens to read that (LIVED, often).
tally() {
	sed '/Shutting down/,$d' "$2" > "$2.counted"
	printf 'mutate: %s: killed %s, lived %s, timed out %s, not covered %s (before any stop)\n' "$1" \
		"$(grep -c '^ *KILLED ' "$2.counted")" "$(grep -c '^ *LIVED ' "$2.counted")" \
		"$(grep -c '^ *TIMED OUT ' "$2.counted")" "$(grep -c '^ *NOT COVERED ' "$2.counted")"
	rm -f "$2.counted"
}

status=0
for pkg in $PKGS; do
	if [ "$pkg" = store/postgres ] && [ -z "${TEST_DATABASE_URL:-}" ]; then
		echo "mutate: TEST_DATABASE_URL is not set: store/postgres's mutants count as not covered"
	fi
	dburl=${TEST_DATABASE_URL:-} ci=${CI:-}
	if [ "$pkg" = store ]; then dburl="" ci=""; fi
	name=$(echo "$pkg" | tr / -)
	start=$(date +%s)
	bound=""
	if [ "$BUDGET" -gt 0 ]; then
		# 30 s of each share are kept for gremlins to stop (-k 30).
		share=$(( (deadline - start) / left - 30 ))
		if [ "$share" -lt 60 ]; then
			echo "mutate: $pkg: skipped, the budget of $BUDGET min is spent"
			left=$((left - 1))
			continue
		fi
		bound="timeout -s INT -k 30 $share"
		echo "mutate: $pkg (at most $share s of the $BUDGET min budget)"
	else
		echo "mutate: $pkg"
	fi
	left=$((left - 1))
	# shellcheck disable=SC2046,SC2086
	TEST_DATABASE_URL=$dburl CI=$ci $bound nice -n 10 "$GO" run "github.com/go-gremlins/gremlins/cmd/gremlins@$GREMLINS_VERSION" unleash \
		--workers "$WORKERS" --timeout-coefficient "$COEFF" \
		$(excludes "$pkg") $extra $diff_flag -o "$OUT/$name.json" "./$pkg" | tee "$OUT/$name.log" || status=1
	echo "mutate: $pkg took $(( $(date +%s) - start )) s"
	tally "$pkg" "$OUT/$name.log"
done
grep -h 'Test efficacy\|Mutator coverage' "$OUT"/*.log 2>/dev/null || true
exit $status
