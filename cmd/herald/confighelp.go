package main

import (
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"
)

// plain drops Markdown code spans' backticks for a terminal.
func plain(s string) string { return strings.ReplaceAll(s, "`", "") }

// defaultText is how a row's default reads in help and in the README.
func (o option) defaultText(markdown bool) string {
	switch {
	case o.defText != "" && markdown:
		return o.defText
	case o.defText != "":
		return plain(o.defText)
	case o.def == "":
		return "—"
	case markdown:
		return "`" + o.def + "`"
	}
	return o.def
}

// configMarkdown renders the configuration table as README.md shows it
// (a test keeps the two identical).
func configMarkdown() string {
	var c config
	var b strings.Builder
	b.WriteString("| variable | flag | default | meaning |\n|---|---|---|---|\n")
	for _, o := range c.options() {
		name, flagText := "`"+o.name+"`", "`--"+o.flagName()+"`"
		if o.flagOnly {
			name = "—"
		}
		if o.tool {
			flagText = "`herald send --" + o.flagName() + "`"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", name, flagText, o.defaultText(true), o.help)
	}
	return b.String()
}

// printFlags writes fs's flags for -h: a row's flag with its variable and
// default, other flags with theirs, each with its help on the next line.
func printFlags(w io.Writer, fs *flag.FlagSet) {
	var lines [][2]string
	fs.VisitAll(func(f *flag.Flag) {
		var head, help string
		if b, ok := f.Value.(*binding); ok {
			o := b.opt
			head = "--" + o.flagName()
			if o.parse.kind != "bool" {
				head += " " + strings.ToUpper(o.parse.kind)
			}
			var where []string
			if !o.flagOnly {
				where = append(where, "$"+o.name)
			}
			if d := o.defaultText(false); d != "—" {
				where = append(where, "default "+d)
			}
			help = plain(o.help)
			if len(where) > 0 {
				help += " (" + strings.Join(where, ", ") + ")"
			}
		} else {
			name, usage := flag.UnquoteUsage(f)
			head = "--" + f.Name
			if name != "" {
				head += " " + strings.ToUpper(name)
			}
			help = usage
			if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "[]" {
				help += fmt.Sprintf(" (default %s)", f.DefValue)
			}
		}
		lines = append(lines, [2]string{head, help})
	})
	sort.SliceStable(lines, func(i, j int) bool { return lines[i][0] < lines[j][0] })
	for _, l := range lines {
		fmt.Fprintf(w, "  %s\n%s\n", l[0], wrap(l[1], "      ", 80))
	}
}

// wrap breaks s into lines of at most width columns, each after prefix.
func wrap(s, prefix string, width int) string {
	var b strings.Builder
	line := prefix
	for _, word := range strings.Fields(s) {
		if line != prefix && len(line)+1+len(word) > width {
			b.WriteString(line + "\n")
			line = prefix
		}
		if line != prefix {
			line += " "
		}
		line += word
	}
	b.WriteString(line)
	return b.String()
}
