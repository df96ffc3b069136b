package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reportCmd writes BENCHMARKS.md from `go test -bench` output and the JSON
// lines of load runs: every figure is the median of its runs, shown with
// the command that produced it and the machine it ran on.
func reportCmd(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("herald-bench report", flag.ContinueOnError)
	fs.SetOutput(stderr)
	micro := fs.String("micro", "", "go test -bench output (-count ≥ 3 for medians)")
	microCmd := fs.String("micro-command", "", "the command that produced --micro")
	load := fs.String("load", "", "load results: the JSON lines of herald-bench runs")
	out := fs.String("out", "", "write here instead of stdout")
	notes := fs.String("notes", "", "a Markdown file included after the header (what profiling found, before and after)")
	peer := fs.String("peer", "", "the Socket.IO peer's runs: JSON lines of its load tool (peer-socketio.sh run)")
	side := fs.String("side", "", "Herald's runs to compare with the peer's: JSON lines of herald-bench runs")
	sideTransports := fs.String("side-transports", "sse,ws,socketio", "Herald's transports in the comparison, in column order")
	missing := map[string]string{}
	fs.Func("side-missing", "TRANSPORT=why: why a transport of the comparison did not run (repeatable)", func(v string) error {
		k, why, ok := strings.Cut(v, "=")
		if !ok {
			return fmt.Errorf("%q is not TRANSPORT=why", v)
		}
		missing[k] = why
		return nil
	})
	keep := fs.String("keep", "", "an earlier BENCHMARKS.md: its sections (## headings) this report does not write are kept, in their place")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *micro == "" && *load == "" && *peer == "" && *side == "" {
		return errors.New("report: give --micro, --load and/or --peer with --side")
	}
	var doc strings.Builder
	writeHeader(&doc)
	if *notes != "" {
		b, err := os.ReadFile(*notes)
		if err != nil {
			return fmt.Errorf("report: %w", err)
		}
		doc.Write(b)
		doc.WriteString("\n")
	}
	if *micro != "" {
		benches, err := readBenchFile(*micro)
		if err != nil {
			return err
		}
		writeMicro(&doc, *microCmd, benches)
	}
	if *load != "" {
		runs, err := readLoadFile(*load)
		if err != nil {
			return err
		}
		writeLoad(&doc, runs)
	}
	if *peer != "" || *side != "" {
		var peers []peerRun
		var herald []Report
		var err error
		if *peer != "" {
			if peers, err = readPeerFile(*peer); err != nil {
				return err
			}
		}
		if *side != "" {
			if herald, err = readLoadFile(*side); err != nil {
				return err
			}
		}
		writeSideBySide(&doc, peers, herald, splitList(strings.ReplaceAll(*sideTransports, " ", ",")), missing)
	}
	text := doc.String()
	if *keep != "" {
		old, err := os.ReadFile(*keep)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("report: %w", err)
		}
		text = keepSections(string(old), text)
	}
	if *out == "" {
		_, err := io.WriteString(stdout, text)
		return err
	}
	return os.WriteFile(*out, []byte(text), 0o644)
}

// keepSections returns doc with the sections of old that doc lacks: a
// section is a "## " heading and what follows up to the next one. doc's
// opening (before its first section) comes first; then old's sections in
// their order, each replaced by doc's section of the same heading when it
// has one; then doc's sections old did not have. So a run of a few
// scenarios updates their sections and keeps the figures of the others.
func keepSections(old, doc string) string {
	_, oldSecs := splitSections(old)
	head, secs := splitSections(doc)
	used := map[string]bool{}
	var b strings.Builder
	b.WriteString(head)
	for _, s := range oldSecs {
		if i := slices.IndexFunc(secs, func(n [2]string) bool { return n[0] == s[0] }); i >= 0 {
			b.WriteString(secs[i][1])
			used[s[0]] = true
			continue
		}
		b.WriteString(s[1])
	}
	for _, s := range secs {
		if !used[s[0]] {
			b.WriteString(s[1])
		}
	}
	return b.String()
}

// splitSections cuts Markdown at its "## " headings (outside code blocks):
// the text before the first, then each heading with its text.
func splitSections(doc string) (head string, secs [][2]string) {
	lines := strings.SplitAfter(doc, "\n")
	cur := &strings.Builder{}
	heading := ""
	fence := false
	flush := func() {
		if heading == "" {
			head = cur.String()
		} else {
			secs = append(secs, [2]string{heading, cur.String()})
		}
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "```") {
			fence = !fence
		}
		if !fence && strings.HasPrefix(l, "## ") {
			flush()
			cur = &strings.Builder{}
			heading = strings.TrimSpace(l)
		}
		cur.WriteString(l)
	}
	flush()
	return head, secs
}

// machine describes where the figures come from.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	mem := "unknown memory"
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "MemTotal:" {
				kb, _ := strconv.ParseFloat(f[1], 64)
				mem = fmt.Sprintf("%.1f GiB", kb/(1<<20))
			}
		}
	}
	kernel := "unknown kernel"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = "Linux " + strings.TrimSpace(string(b))
	}
	lim := raiseFileLimit()
	return fmt.Sprintf("%d cores (%s), %s memory, %s, %s, open-file limit %d",
		runtime.NumCPU(), model, mem, runtime.Version(), kernel, lim.Hard)
}

func writeHeader(w *strings.Builder) {
	fmt.Fprintf(w, "# Herald benchmarks\n\n")
	fmt.Fprintf(w, "Written by `make bench` (`herald-bench report`) on %s.\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- **Machine**: %s.\n", machine())
	fmt.Fprintf(w, "- **Figures** are medians over repeated runs (the run count is given); the load tool runs on the same machine as the server.\n")
	fmt.Fprintf(w, "- How to run these and the long scenarios: README, section Benchmarks. A run of only some scenarios rewrites their sections and keeps the others from the previous file.\n\n")
}

// benchResult is one benchmark's runs: unit → values, one per run.
type benchResult struct {
	name    string
	pkg     string
	metrics map[string][]float64
	units   []string // in first-seen order
}

// parseBench reads `go test -bench` output: "pkg:" lines name the package,
// "BenchmarkX-N  iterations  value unit  value unit …" lines are runs.
func parseBench(r io.Reader) ([]*benchResult, error) {
	var (
		pkg   string
		order []*benchResult
		by    = map[string]*benchResult{}
	)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		key := pkg + " " + f[0]
		b := by[key]
		if b == nil {
			b = &benchResult{name: f[0], pkg: pkg, metrics: map[string][]float64{}}
			by[key] = b
			order = append(order, b)
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			unit := f[i+1]
			if _, seen := b.metrics[unit]; !seen {
				b.units = append(b.units, unit)
			}
			b.metrics[unit] = append(b.metrics[unit], v)
		}
	}
	return order, sc.Err()
}

func readBenchFile(path string) ([]*benchResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseBench(f)
}

// median returns the middle value (the mean of the middle two for an even
// count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func writeMicro(w *strings.Builder, command string, benches []*benchResult) {
	fmt.Fprintf(w, "## Micro-benchmarks\n\n")
	if command != "" {
		fmt.Fprintf(w, "```sh\n%s\n```\n\n", command)
	}
	fmt.Fprintf(w, "| package | benchmark | runs | median ns/op | B/op | allocs/op | other (median) |\n|---|---|---|---|---|---|---|\n")
	for _, b := range benches {
		var other []string
		for _, u := range b.units {
			if u != "ns/op" && u != "B/op" && u != "allocs/op" {
				other = append(other, fmt.Sprintf("%s %s", num(median(b.metrics[u])), u))
			}
		}
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %s |\n", strings.TrimPrefix(b.pkg, "github.com/corp/herald/"), b.name,
			len(b.metrics["ns/op"]), num(median(b.metrics["ns/op"])), num(median(b.metrics["B/op"])),
			num(median(b.metrics["allocs/op"])), strings.Join(other, ", "))
	}
	fmt.Fprintln(w)
}

// num prints a figure with about four significant digits.
func num(v float64) string {
	switch {
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 1000:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

func readLoadFile(path string) ([]Report, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var runs []Report
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if !strings.HasPrefix(line, "{") {
			continue
		}
		var r Report
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		runs = append(runs, r)
	}
	return runs, sc.Err()
}
