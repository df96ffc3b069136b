package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// command is one command of the binary, with the help "-h" prints.
type command struct {
	name    string // "token", "employees import"
	summary string // one line for the command list
	usage   string // the synopsis after "Usage: "
	about   string // what it does, paragraphs
	example string // commands that work as printed
	run     func(ctx context.Context, c *command, e env, args []string) error
	subs    []*command
}

// exec runs the command.
func (c *command) exec(ctx context.Context, e env, args []string) error {
	return c.run(ctx, c, e, args)
}

// commands lists the binary's commands; serve, the default, comes first.
func commands() []*command {
	return []*command{
		serveCommand(), migrateCommand(), tokenCommand(), sendCommand(), employeesCommand(), vapidCommand(),
		{name: "version", summary: "print the version", usage: "herald version", run: versionCmd},
	}
}

func versionCmd(_ context.Context, c *command, e env, args []string) error {
	fs := c.flagSet()
	if err := c.parse(e, fs, args); err != nil {
		return err
	}
	if err := c.noArgs(fs); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "herald", buildVersion())
	return nil
}

// printUsage writes the command list ("herald -h").
func printUsage(w io.Writer) {
	fmt.Fprint(w, `Herald: real-time notifications for browsers (Server-Sent Events, WebSocket)
with a REST API to publish them.

Usage: herald [command] [flags]

Commands:
`)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-18s %s\n", c.name, c.summary)
		for _, s := range c.subs {
			fmt.Fprintf(w, "  %-18s %s\n", s.name, s.summary)
		}
	}
	fmt.Fprint(w, `
"herald COMMAND -h" shows a command's flags and an example; "herald serve -h"
lists every setting with its environment variable. Without a command, herald
serves (herald --dev is herald serve --dev).
`)
}

// flagSet returns an empty flag set for c whose errors parse reports.
func (c *command) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("herald "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args with fs. On -h it prints c's help to stdout and returns
// flag.ErrHelp (main exits 0 on it); a bad flag or a stray argument is an
// error that says where the help is.
func (c *command) parse(e env, fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		c.printHelp(e.stdout, fs)
		return err
	}
	if err != nil {
		return fmt.Errorf("%s: %v (herald %s -h shows the flags)", c.name, err, c.name)
	}
	return nil
}

// noArgs refuses positional arguments after the flags.
func (c *command) noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("%s: unexpected argument %q: flags go before it, or it is a typo (herald %s -h shows the flags)", c.name, fs.Arg(0), c.name)
	}
	return nil
}

// parseConfig binds the configuration rows c reads to fs, parses args and
// returns the configuration they give.
func (c *command) parseConfig(e env, fs *flag.FlagSet, args []string) (config, error) {
	var cfg config
	root, _, _ := strings.Cut(c.name, " ")
	bound := bindOptions(fs, e.getenv, &cfg, root)
	if err := c.parse(e, fs, args); err != nil {
		return cfg, err
	}
	if problems := applyOptions(&cfg, bound); len(problems) > 0 {
		return cfg, fmt.Errorf("%s: %s", c.name, strings.Join(problems, "; "))
	}
	return cfg, nil
}

// printHelp writes c's help: synopsis, description, flags, example.
func (c *command) printHelp(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: %s\n", c.usage)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	if len(c.subs) > 0 {
		fmt.Fprintln(w, "\nCommands:")
		for _, s := range c.subs {
			fmt.Fprintf(w, "  %-18s %s\n", s.name, s.summary)
		}
	}
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if hasFlags {
		fmt.Fprintln(w, "\nFlags:")
		printFlags(w, fs)
	}
	if c.example != "" {
		fmt.Fprintf(w, "\nExample:\n%s\n", indent(strings.TrimSpace(c.example), "  "))
	}
}

func indent(s, prefix string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "\n")
}
