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
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *micro == "" && *load == "" {
		return errors.New("report: give --micro and/or --load")
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
	if *out == "" {
		_, err := io.WriteString(stdout, doc.String())
		return err
	}
	return os.WriteFile(*out, []byte(doc.String()), 0o644)
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
	fmt.Fprintf(w, "- How to run these and the long scenarios: README, section Benchmarks.\n\n")
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
