package nudge

import (
	"fmt"
	"net/url"
	"strings"
	"testing"

	"gocloud.dev/pubsub"
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
			got := tmpl.Expand(server)
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

// FuzzParseTopic checks that parseTopic never panics, that its errors are
// one line naming the template, and that a template it accepts with
// {server} expands, for any valid server name, to a URL without braces
// whose scheme has a topic driver, and one without {server} to itself.
func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{
		"nats://pushpull.{server}?natsv2=true",
		"mem://nudge-{server}",
		"nats://pushpull.nudge",
		"nats://pushpull.{host}",
		"carrier-pigeon://{server}",
		"{server}",
		"mem://%zz{server}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tmpl, err := parseTopic(s)
		if err != nil {
			if msg := err.Error(); !strings.HasPrefix(msg, fmt.Sprintf("nudge: topic URL template %q: ", s)) || strings.Contains(msg, "\n") {
				t.Fatalf("error %q is not one line naming the template", msg)
			}
			return
		}
		for _, server := range []string{"web-1", "a", "x.y_z-0"} {
			got := tmpl.Expand(server)
			if !tmpl.PerServer() {
				if got != s {
					t.Fatalf("parseTopic(%q) without placeholder expands to %q", s, got)
				}
				continue
			}
			if strings.ContainsAny(got, "{}") {
				t.Fatalf("expand(%q) = %q still has braces", server, got)
			}
			u, err := url.Parse(got)
			if err != nil {
				t.Fatalf("expand(%q) = %q does not parse: %v", server, got, err)
			}
			if !pubsub.DefaultURLMux().ValidTopicScheme(u.Scheme) {
				t.Fatalf("expand(%q) = %q has no topic driver", server, got)
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
