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
