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
	err := run(ctx, os.Args[1:], env{getenv: os.Getenv, stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr})
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "herald:", err)
		os.Exit(1)
	}
}

// env is the process as a command sees it.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// run is the whole program; main only wires the process to it.
func run(ctx context.Context, args []string, e env) error {
	if len(args) == 0 {
		return commands()[0].exec(ctx, e, nil)
	}
	switch args[0] {
	case "-h", "-help", "--help":
		printUsage(e.stdout)
		return flag.ErrHelp
	case "help":
		return helpCmd(ctx, e, args[1:])
	}
	if args[0][0] == '-' { // herald --dev: serve's flags
		return commands()[0].exec(ctx, e, args)
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.exec(ctx, e, args[1:])
		}
	}
	printUsage(e.stderr)
	return fmt.Errorf("unknown command %q (the commands are listed above)", args[0])
}

// helpCmd serves "herald help [COMMAND [SUBCOMMAND]]".
func helpCmd(ctx context.Context, e env, args []string) error {
	if len(args) == 0 {
		printUsage(e.stdout)
		return flag.ErrHelp
	}
	return run(ctx, append(args, "-h"), e)
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
