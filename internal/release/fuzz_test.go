package release

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/manifest"
)

// FuzzParseServers checks that ParseServers never panics, returns only
// valid, distinct names, and refuses with ErrInvalidName.
func FuzzParseServers(f *testing.F) {
	for _, s := range []string{"", "web-1", "web-1,web-2", " web-1 , web-1 ,,", "../x", "a,B", "a,\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		servers, err := ParseServers(s)
		if err != nil {
			if !errors.Is(err, manifest.ErrInvalidName) {
				t.Fatalf("ParseServers(%q) = %v, not ErrInvalidName", s, err)
			}
			return
		}
		seen := map[string]bool{}
		for _, srv := range servers {
			if manifest.CheckName("server", srv) != nil || seen[srv] || !strings.Contains(s, srv) {
				t.Fatalf("ParseServers(%q) = %q", s, servers)
			}
			seen[srv] = true
		}
	})
}

// FuzzRedactURL checks that RedactURL never panics and never returns a
// URL that still carries a password.
func FuzzRedactURL(f *testing.F) {
	for _, s := range []string{"https://u:p@h/x", "ssh://git:pw@h/x", "git@h:x", "/srv/x", "%", "https://u@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := RedactURL(s)
		u, err := url.Parse(got)
		if err != nil || u.Scheme == "" || u.User == nil {
			return
		}
		if _, has := u.User.Password(); has {
			t.Fatalf("RedactURL(%q) = %q keeps a password", s, got)
		}
		if u.Scheme != "ssh" && u.Scheme != "git+ssh" {
			t.Fatalf("RedactURL(%q) = %q keeps user info", s, got)
		}
	})
}
