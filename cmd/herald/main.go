// Command herald is the Herald notification service and its tools:
// serve (default), migrate, token, send, employees, version.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = ""

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(1)
	}
}

const usage = `Usage: herald [command] [flags]

Commands:
  serve       run the service (default)
  migrate     apply database migrations and exit
  token       mint an HS256 token (needs JWT_SECRET)
  send        publish a notification through a running Herald
  employees   list, put, delete or import directory entries
  version     print the version

Run "herald COMMAND -h" for a command's flags.
`

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && len(args[0]) > 0 && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		cfg, err := loadConfig(args, getenv, stderr)
		if err != nil {
			return err
		}
		return serve(ctx, cfg, stdout, stderr)
	case "migrate":
		return migrateCmd(ctx, args, getenv, stdout, stderr)
	case "token":
		return tokenCmd(args, getenv, stdout, stderr)
	case "send":
		return sendCmd(ctx, args, getenv, stdout, stderr)
	case "employees":
		return employeesCmd(ctx, args, getenv, stdin, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "herald", buildVersion())
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", cmd)
}

func buildVersion() string {
	v := version
	info, ok := debug.ReadBuildInfo()
	if v == "" && ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		v = info.Main.Version
	}
	if v == "" {
		v = "dev"
	}
	if ok {
		v += " (" + info.GoVersion + ")"
	}
	return v
}

func splitHostPort(addr string) (string, string, error) { return net.SplitHostPort(addr) }
