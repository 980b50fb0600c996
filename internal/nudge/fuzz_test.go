package nudge

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzParseTemplate checks that parseTemplate never panics and that every
// template it accepts expands, for any valid server name, to an absolute
// http(s) URL with a host and no leftover braces.
func FuzzParseTemplate(f *testing.F) {
	for _, s := range []string{
		"http://{server}:8080/nudge",
		"https://relay.example.com/nudge?host={server}",
		"http://{server",
		"ftp://{server}/x",
		"http://%zz/{server}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := parseTemplate(s)
		if err != nil {
			if !strings.Contains(err.Error(), "nudge: URL template") {
				t.Fatalf("error %q does not say what it is about", err)
			}
			return
		}
		for _, server := range []string{"web-1", "a", "x.y_z-0"} {
			got := tmpl.expand(server)
			if strings.ContainsAny(got, "{}") {
				t.Fatalf("expand(%q) = %q still has braces", server, got)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatalf("expand(%q) = %q does not parse: %v", server, got, err)
			}
			if (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
				t.Fatalf("expand(%q) = %q is not an http(s) URL with a host", server, got)
			}
		}
	})
}

// FuzzParseGCE checks that parseGCE never panics, that its errors are one
// line naming the value, and that what it accepts is exactly PROJECT/ZONE
// with nothing in either part that would change the meaning of a Compute
// API path or query.
func FuzzParseGCE(f *testing.F) {
	for _, s := range []string{
		"my-project/us-central1-a",
		"example.com:my-project/europe-west4-b",
		"my-project",
		"a/b/c",
		"my-project/us-central1-a?x",
		"my-project/../x",
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		g, err := parseGCE(s)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, "nudge: GCE ") || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not one line about the GCE value", msg)
			}
			return
		}
		if g.project+"/"+g.zone != s {
			t.Fatalf("parseGCE(%q) = %+v, which does not make up the input", s, g)
		}
		if g.project == "" || g.zone == "" || strings.ContainsAny(g.project+g.zone, "/?#%{} \\") || strings.Contains(g.zone, ".") {
			t.Fatalf("parseGCE(%q) accepted %+v", s, g)
		}
	})
}
