package e2e_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// designMap reads the map of docs/design.md: every line of the block after
// the "design map" marker, "PACKAGE ──▶ IMPORT…".
func designMap(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(data), "<!-- design map: checked by TestDesignMap -->\n```\n")
	if !ok {
		t.Fatalf("%s has no design map", path)
	}
	block, _, _ = strings.Cut(block, "```")
	out := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(block))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		pkg, deps, ok := strings.Cut(line, "──▶")
		if !ok {
			t.Fatalf("%s: map line %q has no ──▶", path, line)
		}
		pkg = strings.TrimSpace(pkg)
		if _, dup := out[pkg]; dup {
			t.Errorf("%s: %s is in the map twice", path, pkg)
		}
		d := strings.Fields(deps)
		slices.Sort(d)
		out[pkg] = d
	}
	return out
}

// TestDesignMap checks the map in docs/design.md against the module's real
// imports (go list, tests aside): every package is in it with exactly the
// packages of the module it imports, so the map cannot drift from the
// code.
func TestDesignMap(t *testing.T) {
	root := filepath.Join("..", "..")
	cmd := exec.CommandContext(t.Context(), "go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "./...")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.Bytes())
	}
	const module = "github.com/pushpull/pushpull/"
	real := map[string][]string{}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		var deps []string
		for _, imp := range f[1:] {
			if rest, ok := strings.CutPrefix(imp, module); ok {
				deps = append(deps, rest)
			}
		}
		slices.Sort(deps)
		real[pkg] = deps
	}
	if len(real) < 20 {
		t.Fatalf("go list found %d packages: %s", len(real), out)
	}
	doc := designMap(t, filepath.Join(root, "docs", "design.md"))
	for pkg, deps := range real {
		got, ok := doc[pkg]
		switch {
		case !ok:
			t.Errorf("docs/design.md: the map lacks %s (──▶ %s)", pkg, strings.Join(deps, " "))
		case !slices.Equal(got, deps):
			t.Errorf("docs/design.md: the map says %s ──▶ %s; it imports %s", pkg, strings.Join(got, " "), strings.Join(deps, " "))
		}
	}
	for pkg := range doc {
		if _, ok := real[pkg]; !ok {
			t.Errorf("docs/design.md: the map names %s, which is not a package of the module", pkg)
		}
	}
}
