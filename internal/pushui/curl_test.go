package pushui

import (
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

// TestCurlExamples runs every curl example of the API reference, as the
// reference prints it, with the curl program against a real pushui: in
// the table's order, with $PUSHUI its address, the files the examples
// send (web-1.json, web.json, push.json) holding the reference's own
// example bodies, "ETAG" the ETag a GET of the same document gives, and
// the example rollout id the rollout the examples started. Each must be
// answered with success, but the long form's pause, which finds the
// rollout the short form paused (409, as documented).
func TestCurlExamples(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the curl examples need curl: install Debian's curl package")
	}
	f := groupFixture(t)
	const examplePackage = "hello/hello-20261122T101500Z-0123456789ab.tar.zst"
	if p := f.addPackage("hello", time.Date(2026, 11, 22, 10, 15, 0, 0, time.UTC), "0123456789ab0123456789ab0123456789ab0123", false, "", "the reference's build"); p.String() != examplePackage {
		t.Fatalf("the example's package is %s, want %s", p, examplePackage)
	}
	const nextPackage = "hello/hello-20261123T091500Z-89abcdef0123.tar.zst" // the rollout example's
	if p := f.addPackage("hello", time.Date(2026, 11, 23, 9, 15, 0, 0, time.UTC), "89abcdef0123456789abcdef0123456789abcdef", false, "", "the next build"); p.String() != nextPackage {
		t.Fatalf("the rollout example's package is %s, want %s", p, nextPackage)
	}
	s := f.server()
	hs := httptest.NewServer(s)
	defer hs.Close()

	dir := t.TempDir()
	routes := s.api.Routes()
	body := func(method, path string) string {
		for _, rt := range routes {
			if rt.Method == method && rt.Path == path {
				return rt.Body
			}
		}
		t.Fatalf("no route %s %s", method, path)
		return ""
	}
	for file, doc := range map[string]string{
		"web-1.json": body("PUT", "/api/servers/{server}"),
		"web.json":   body("PUT", "/api/groups/{group}"),
		"push.json":  body("PUT", "/api/config"),
	} {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(doc), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	const exampleID = "20261201t101500-0a1b2c"
	rolloutID := ""
	run := 0
	for _, rt := range routes {
		cmd := strings.ReplaceAll(rt.Example, "$PUSHUI", hs.URL)
		if strings.Contains(cmd, `"ETAG"`) {
			// The document's ETag, as the GET before a PUT gives it.
			target := strings.TrimSuffix(cmd[strings.LastIndex(cmd, hs.URL):], `"`)
			resp, err := http.Get(target)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			cmd = strings.ReplaceAll(cmd, `"ETAG"`, resp.Header.Get("ETag"))
		}
		if strings.Contains(cmd, exampleID) {
			if rolloutID == "" {
				t.Fatalf("%s %s: no rollout started before its example", rt.Method, rt.Path)
			}
			cmd = strings.ReplaceAll(cmd, exampleID, rolloutID)
		}
		c := exec.CommandContext(t.Context(), "sh", "-c", cmd+` -w '\n%{http_code}'`)
		c.Dir = dir // where the files the examples send are
		out, err := c.CombinedOutput()
		if err != nil {
			t.Errorf("%s\n%v\n%s", cmd, err, out)
			continue
		}
		text := strings.TrimSpace(string(out))
		code, _ := strconv.Atoi(text[strings.LastIndex(text, "\n")+1:])
		want := code >= 200 && code < 300
		if rt.Method == "POST" && rt.Path == "/api/rollouts/{group}/{env}/{id}/{cmd}" {
			want = code == http.StatusConflict // the short form paused it already
		}
		if !want {
			t.Errorf("%s\nanswered %d:\n%s", cmd, code, text)
		}
		if rt.Method == "POST" && rt.Path == "/api/rollouts" {
			recs, _, err := s.svc.Rollouts.List(t.Context(), "web", "", 1)
			if err != nil || len(recs) == 0 {
				t.Fatalf("the started rollout is not listed: %v", err)
			}
			rolloutID = recs[0].ID
			if recs[0].Strategy.Package.String() != nextPackage || !recs[0].Strategy.AutoRevert {
				t.Errorf("the example started %+v", recs[0].Strategy)
			}
		}
		run++
	}
	if run != len(routes) {
		t.Errorf("ran %d of %d examples", run, len(routes))
	}
	m, _, _ := f.store.ReadManifest(t.Context(), manifest.Server("web-1"))
	if e, _ := m.Lookup("hello"); e.Package.String() != examplePackage || e.Config["MESSAGE"] != "hi" {
		t.Errorf("web-1's manifest after the PUT example: %+v", e)
	}
}
