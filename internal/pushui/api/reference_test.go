package api

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite docs/api.md from the route table")

// reference renders the route table as docs/api.md shows it.
func reference(routes []Route) []byte {
	var b bytes.Buffer
	b.WriteString("# pushui's JSON API\n\n")
	b.WriteString("<!-- Generated from the route table (internal/pushui/api, Handler.Routes) by\n")
	b.WriteString("     go test ./internal/pushui/api -run TestReference -update; do not edit. -->\n\n")
	b.WriteString("pushui serves this reference at `GET /api`, as a page or, to `Accept: application/json`, as JSON.\n")
	b.WriteString("Every answer is JSON; an error is `{\"error\": \"…\"}` with a 4xx or 5xx status. Writes check the\n")
	b.WriteString("version they read (`If-Match` with the ETag of a GET). Times are RFC 3339 in UTC. In the examples\n")
	b.WriteString("`$PUSHUI` is pushui's base URL.\n")
	for _, rt := range routes {
		fmt.Fprintf(&b, "\n## %s %s\n\n%s\n\n", rt.Method, rt.Path, rt.What)
		if rt.Body != "" {
			fmt.Fprintf(&b, "Body: `%s`\n\n", rt.Body)
		}
		fmt.Fprintf(&b, "Answers: %s\n\n```sh\n%s\n```\n", rt.Answers, rt.Example)
	}
	return b.Bytes()
}

// TestReference checks docs/api.md against the route table: the reference
// in the docs is the table's (rewrite it with -update).
func TestReference(t *testing.T) {
	path := filepath.Join("..", "..", "..", "docs", "api.md")
	got := reference((&Handler{}).Routes())
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s is not the route table's reference: run go test ./internal/pushui/api -run TestReference -update", path)
	}
}

// docRoute is a route named in prose: `GET /api/…`.
var docRoute = regexp.MustCompile("\\b(GET|PUT|POST|DELETE|PATCH) (/api/[^\\s`?\\[)]*)")

// TestDocsNameRealRoutes checks that every API route the README and the
// docs name is in the route table, so that prose cannot name a route
// that does not exist.
func TestDocsNameRealRoutes(t *testing.T) {
	routes := (&Handler{}).Routes()
	files, err := filepath.Glob(filepath.Join("..", "..", "..", "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, filepath.Join("..", "..", "..", "README.md"))
	named := 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		// Prose wraps lines: join them so a route split over two is seen.
		text := strings.ReplaceAll(string(data), "\n", " ")
		for _, m := range docRoute.FindAllStringSubmatch(text, -1) {
			named++
			method, path := m[1], strings.TrimRight(m[2], ".,;:")
			if !inTable(routes, method, path) {
				t.Errorf("%s names %s %s, which is not in the route table", filepath.Base(f), method, path)
			}
		}
	}
	if named < 10 {
		t.Fatalf("found only %d routes named in the docs: the pattern is broken", named)
	}
}

// inTable reports whether routes has method with a path that matches
// path: segments equal, or either a {wildcard}.
func inTable(routes []Route, method, path string) bool {
	ps := strings.Split(strings.TrimSuffix(path, "/"), "/")
	for _, rt := range routes {
		rs := strings.Split(rt.Path, "/")
		if rt.Method != method || len(rs) != len(ps) {
			continue
		}
		ok := true
		for i := range rs {
			wild := strings.HasPrefix(rs[i], "{") || strings.HasPrefix(ps[i], "{")
			if !wild && rs[i] != ps[i] {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
