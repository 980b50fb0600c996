// Command benchtable turns the output of `go test -bench` into the Markdown
// table of BENCHMARKS.md: one row per benchmark and reported metric, under a
// header naming the machine the run happened on. `make bench` pipes every
// benchmark of the module through it.
//
//	go test -run '^$' -bench . ./... | go run ./tools/benchtable -o BENCHMARKS.md
//
// The input is copied to standard output as it arrives, so a long run shows
// its progress. Only metrics are tabulated; the ns/op of benchmarks that
// report their own figures (ratios, latencies, counts) is dropped when it is
// zero, as those benchmarks set it to say "not a timing".
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"
)

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchtable", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "BENCHMARKS.md", "Markdown `file` to write")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	rows, header, err := parse(io.TeeReader(stdin, stdout))
	if err != nil {
		fmt.Fprintln(stderr, "benchtable:", err)
		return 1
	}
	if len(rows) == 0 {
		fmt.Fprintln(stderr, "benchtable: no benchmark results in the input")
		return 1
	}
	var b strings.Builder
	writeMarkdown(&b, rows, header, time.Now())
	if err := os.WriteFile(*out, []byte(b.String()), 0o644); err != nil {
		fmt.Fprintln(stderr, "benchtable:", err)
		return 1
	}
	fmt.Fprint(stdout, "\n", b.String())
	return 0
}

// row is one metric of one benchmark result.
type row struct {
	Pkg, Name, Unit string
	Value           float64
}

// machine is what `go test` says of the machine: goos, goarch, cpu.
type machine map[string]string

// parse reads `go test -bench` output and returns every metric.
func parse(r io.Reader) ([]row, machine, error) {
	var rows []row
	m := machine{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if k, v, ok := strings.Cut(line, ": "); ok && (k == "goos" || k == "goarch" || k == "cpu" || k == "pkg") {
			if k == "pkg" {
				pkg = strings.TrimPrefix(v, "github.com/pushpull/pushpull/")
			} else {
				m[k] = v
			}
			continue
		}
		rows = append(rows, parseResult(pkg, line)...)
	}
	return rows, m, sc.Err()
}

// parseResult returns the metrics of one result line, none for other lines.
func parseResult(pkg, line string) []row {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return nil
	}
	name := f[0]
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		name = name[:i] // the GOMAXPROCS suffix
	}
	var rows []row
	for i := 2; i+1 < len(f); i += 2 {
		var v float64
		if _, err := fmt.Sscan(f[i], &v); err != nil {
			return nil
		}
		if f[i+1] == "ns/op" && v == 0 {
			continue
		}
		rows = append(rows, row{Pkg: pkg, Name: strings.TrimPrefix(name, "Benchmark"), Unit: f[i+1], Value: v})
	}
	return rows
}

func writeMarkdown(w io.Writer, rows []row, m machine, now time.Time) {
	fmt.Fprintf(w, "# Benchmarks\n\nWritten by `make bench` on %s. Every ratio divides a pushpull figure by a baseline measured in the same run on the same machine.\n\n", now.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "Machine: %s/%s, %s, %d cores, %s, %s.\n\n", m["goos"], m["goarch"], orUnknown(m["cpu"]), runtime.NumCPU(), memTotal(), runtime.Version())
	fmt.Fprintln(w, "| package | benchmark | figure | unit |")
	fmt.Fprintln(w, "|---|---|--:|---|")
	for _, r := range rows {
		fmt.Fprintf(w, "| %s | %s | %s | %s |\n", r.Pkg, r.Name, format(r.Value), r.Unit)
	}
}

func format(v float64) string {
	switch {
	case v == float64(int64(v)) && v < 1e12:
		return fmt.Sprintf("%d", int64(v))
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown CPU"
	}
	return s
}

// memTotal reads the machine's memory from /proc/meminfo.
func memTotal() string {
	out, err := exec.Command("awk", `/^MemTotal:/ {printf "%.0f GiB RAM", $2/1048576}`, "/proc/meminfo").Output()
	if err != nil || len(out) == 0 {
		return "unknown RAM"
	}
	return string(out)
}
