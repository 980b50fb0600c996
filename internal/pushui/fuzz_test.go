package pushui

import (
	"maps"
	"net/url"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// FuzzParseHtpasswd: the parser never panics, and what it accepts has only
// bcrypt hashes and names without spaces or colons.
func FuzzParseHtpasswd(f *testing.F) {
	f.Add([]byte("alice:$2y$05$abcdefghijklmnopqrstuu5Cq/0kLPgQ0xQkQbi6yKzKcK2w0Z2Qy\n"))
	f.Add([]byte("# comment\n\nbob:$apr1$x$y\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		h, err := ParseHtpasswd(data)
		if err != nil {
			return
		}
		for user, hash := range h.users {
			if user == "" || strings.ContainsAny(user, ": \t\n") {
				t.Errorf("accepted user name %q", user)
			}
			if !isBcryptPrefix(string(hash)) {
				t.Errorf("accepted non-bcrypt hash %q", hash)
			}
		}
	})
}

// FuzzParseConfigText: the parser never panics, accepts only valid keys,
// and what it accepts survives formatting and parsing again.
func FuzzParseConfigText(f *testing.F) {
	f.Add("A=1\nB = two words\n# c\n")
	f.Add("URL=http://x/?a=b=c\r\n\n")
	f.Add("bad key=1")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := parseConfigText(text)
		if err != nil {
			return
		}
		for k := range m {
			if err := manifest.CheckConfigKey(k); err != nil {
				t.Fatalf("accepted %v", err)
			}
		}
		again, err := parseConfigText(formatConfigText(m))
		if err != nil || !maps.Equal(again, m) {
			t.Fatalf("round trip of %q: %v, %v", m, again, err)
		}
	})
}

// FuzzCommitURL: the result is empty or an https URL on a known forge,
// with no credentials, query or fragment, ending in the commit.
func FuzzCommitURL(f *testing.F) {
	f.Add("https://github.com/org/repo.git", "0123456789ab")
	f.Add("git@gitlab.com:a/b/c.git", "0123456789abcdef")
	f.Add("javascript:alert(1)", "0123456789ab")
	f.Fuzz(func(t *testing.T, repo, commit string) {
		got := commitURL(repo, commit)
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

// FuzzPrecondition: If-Match never matches an absent manifest, always
// matches its own ETag, and a mismatched strong tag never matches.
func FuzzPrecondition(f *testing.F) {
	f.Add(`"abc"`, "abc")
	f.Add(`W/"abc", "def"`, `"def"`)
	f.Add("*", "g42")
	f.Fuzz(func(t *testing.T, ifMatch, version string) {
		if preconditionHolds(ifMatch, "", "") {
			t.Fatalf("If-Match %q matched an absent manifest", ifMatch)
		}
		v := blobstore.Version(version)
		if strings.Trim(version, `"`) != "" && !strings.ContainsAny(version, ",") && !preconditionHolds(etag(v), "", v) {
			t.Fatalf("ETag %s does not match its own version %q", etag(v), version)
		}
		if preconditionHolds(ifMatch, "", v) && !strings.Contains(ifMatch, "*") && !strings.Contains(ifMatch, strings.Trim(version, `"`)) {
			t.Fatalf("If-Match %q matched version %q", ifMatch, version)
		}
	})
}
