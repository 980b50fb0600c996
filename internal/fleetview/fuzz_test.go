package fleetview

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzCommitURL: the result is empty or an https URL on a known forge,
// with no credentials, query or fragment, ending in the commit.
func FuzzCommitURL(f *testing.F) {
	f.Add("https://github.com/org/repo.git", "0123456789ab")
	f.Add("git@gitlab.com:a/b/c.git", "0123456789abcdef")
	f.Add("javascript:alert(1)", "0123456789ab")
	f.Fuzz(func(t *testing.T, repo, commit string) {
		got := CommitURL(repo, commit)
		if got == "" {
			return
		}
		u, err := url.Parse(got)
		if err != nil || u.Scheme != "https" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			t.Fatalf("commitURL(%q, %q) = %q", repo, commit, got)
		}
		switch {
		case u.Host == "github.com", u.Host == "gitlab.com", u.Host == "bitbucket.org", strings.HasSuffix(u.Host, ".googlesource.com"):
		default:
			t.Fatalf("commitURL(%q, %q) = %q: unknown host", repo, commit, got)
		}
		if !strings.HasSuffix(got, "/"+commit) || strings.Contains(u.Path, "/../") {
			t.Fatalf("commitURL(%q, %q) = %q", repo, commit, got)
		}
	})
}
