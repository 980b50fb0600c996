package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const sample = `goos: linux
goarch: amd64
pkg: github.com/pushpull/pushpull/pkginstall
cpu: Example CPU @ 2.00GHz
BenchmarkInstall-2   	       1	2000000000 ns/op	         1.15 ratio	  40.5 peak-RSS-MiB
BenchmarkNudge/http-2 	       1	         0 ns/op	        12.0 p50-ms	        30.0 p99-ms
PASS
ok  	github.com/pushpull/pushpull/pkginstall	3.0s
`

func TestParse(t *testing.T) {
	rows, m, err := parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	want := []row{
		{"pkginstall", "Install", "ns/op", 2e9},
		{"pkginstall", "Install", "ratio", 1.15},
		{"pkginstall", "Install", "peak-RSS-MiB", 40.5},
		{"pkginstall", "Nudge/http", "p50-ms", 12},
		{"pkginstall", "Nudge/http", "p99-ms", 30},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %v, want %v", rows, want)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %v, want %v", i, rows[i], want[i])
		}
	}
	if m["cpu"] != "Example CPU @ 2.00GHz" {
		t.Errorf("cpu = %q", m["cpu"])
	}
}

func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "B.md")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-o", out}, strings.NewReader(sample), &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	md, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"| pkginstall | Install | 1.15 | ratio |", "| pkginstall | Nudge/http | 30 | p99-ms |", "Example CPU"} {
		if !strings.Contains(string(md), s) {
			t.Errorf("BENCHMARKS.md lacks %q:\n%s", s, md)
		}
	}
	if !strings.HasPrefix(stdout.String(), "goos: linux") {
		t.Errorf("input not echoed: %q", stdout.String())
	}
	if code := run([]string{"-o", out}, strings.NewReader("PASS\n"), &stdout, &stderr); code != 1 {
		t.Errorf("no results: exit %d, want 1", code)
	}
}
