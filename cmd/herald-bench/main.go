// Command herald-bench measures a Herald: it opens many authenticated
// streams (SSE or WebSocket) from loopback source addresses, publishes at a
// fixed rate, and reports connect rate, publish→receive latency,
// throughput, loss/duplicates/cross-delivery (which must be zero), and the
// server's memory per stream and CPU. It can start Herald itself (--spawn),
// splits itself over worker processes when the streams need more open
// files than one process may hold, and writes BENCHMARKS.md from results
// (herald-bench report).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "herald-bench:", err)
		os.Exit(1)
	}
}

const usage = `Usage:
  herald-bench [flags]          one load run against --url, or a Herald it starts (--spawn)
  herald-bench report [flags]   write BENCHMARKS.md from go test -bench output and load results
  herald-bench floor [flags]    a bare Go server for the same load (the floor of CPU per message; see floor.go)

Examples (from the repository root):
  herald-bench --spawn --streams 500 --rate 200 --duration 10s
  herald-bench --spawn --streams 19500 --rate 0                      # memory per stream
  herald-bench --spawn --streams 10000 --rate 1000 --duration 60s    # p99 publish→receive
  herald-bench --spawn --streams 10000 --mode broadcast --rate 1 --count 5
  herald-bench --url http://127.0.0.1:3000 --jwt-secret S --server-pid 1234 --streams 1000

Stdout gets a table and, as its last line, the same report as JSON.

Flags:
`

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "--worker", "-worker":
			log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			return runWorker(ctx, stdin, stdout, log)
		case "report":
			return reportCmd(args[1:], stdout, stderr)
		case "floor":
			return runFloor(ctx, args[1:], stdout, stderr)
		case "help", "-h", "--help":
			// The usage and every flag, on stdout (bench.sh reads which
			// transports this build has from it).
			if _, err := parseConfig([]string{"-h"}, getenv, stdout); !errors.Is(err, flag.ErrHelp) {
				return err
			}
			return nil
		}
	}
	cfg, err := parseConfig(args, getenv, stderr)
	if err != nil {
		return err
	}
	if cfg.CenterCalls > 0 {
		return runCenter(ctx, cfg, "herald-bench "+strings.Join(args, " "), stdout, stderr)
	}
	return runLoad(ctx, cfg, "herald-bench "+strings.Join(args, " "), stdout, stderr)
}
