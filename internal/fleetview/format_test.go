package fleetview

import (
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/manifest"
)

func TestCommitURL(t *testing.T) {
	const c = "0123456789abcdef0123456789abcdef01234567"
	tests := []struct{ repo, commit, want string }{
		{"https://github.com/org/repo", c, "https://github.com/org/repo/commit/" + c},
		{"https://github.com/org/repo.git", c, "https://github.com/org/repo/commit/" + c},
		{"https://GitHub.com/org/repo/", c, "https://github.com/org/repo/commit/" + c},
		{"git@github.com:org/repo.git", c, "https://github.com/org/repo/commit/" + c},
		{"https://gitlab.com/group/sub/repo", c, "https://gitlab.com/group/sub/repo/-/commit/" + c},
		{"git@bitbucket.org:team/repo.git", c, "https://bitbucket.org/team/repo/commits/" + c},
		{"https://skia.googlesource.com/buildbot", c, "https://skia.googlesource.com/buildbot/+/" + c},
		{"https://github.com/org/repo", "0123456789ab", "https://github.com/org/repo/commit/0123456789ab"},
		{"https://github.com/org", c, ""},                  // not a repository
		{"https://github.com/org/repo/extra", c, ""},       // not a repository
		{"https://example.com/org/repo", c, ""},            // unknown forge
		{"ssh://git@github.com/org/repo", c, ""},           // not a web URL we map
		{"https://user:pw@github.com/org/repo", c, ""},     // credentials
		{"https://github.com/org/repo?x=1", c, ""},         // query
		{"https://github.com/org/re po", c, ""},            // bad segment
		{"https://github.com/../repo", c, ""},              // dot segment
		{"javascript:alert(1)//github.com/a/b", c, ""},     // not http
		{"https://github.com/org/repo", "<script>", ""},    // not a commit
		{"https://github.com/org/repo", "", ""},            // no commit
		{"https://evil.googlesource.com.example/a", c, ""}, // lookalike host
		{"", c, ""},
	}
	for _, tt := range tests {
		if got := CommitURL(tt.repo, tt.commit); got != tt.want {
			t.Errorf("commitURL(%q, %q) = %q, want %q", tt.repo, tt.commit, got, tt.want)
		}
	}
}

func TestAgo(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "just now"},
		{9 * time.Second, "just now"},
		{42 * time.Second, "42s ago"},
		{5*time.Minute + 59*time.Second, "5m ago"},
		{3 * time.Hour, "3h ago"},
		{47 * time.Hour, "47h ago"},
		{72 * time.Hour, "3d ago"},
		{-2 * time.Minute, "in 2m"},
		{40 * 24 * time.Hour, "2026-10-13"},
	}
	for _, tt := range tests {
		if got := Ago(now.Add(-tt.d), now); got != tt.want {
			t.Errorf("ago(-%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := Ago(time.Time{}, now); got != "never" {
		t.Errorf("ago(zero) = %q", got)
	}
}

func TestDescribeChange(t *testing.T) {
	p := func(s string) manifest.PackageName {
		n, err := manifest.ParsePackageName(s)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	h1, h2 := p("hello/hello-20261101T000000Z-0123456789ab.tar.zst"), p("hello/hello-20261102T000000Z-0123456789ac.tar.zst")
	a1 := p("api/api-20261101T000000Z-0123456789ab.tar.zst")
	before := &manifest.Manifest{Packages: []manifest.Entry{{Package: h1}, {Package: a1, Env: "api-canary", Config: map[string]string{"A": "1"}}}}
	after := &manifest.Manifest{Packages: []manifest.Entry{{Package: h2, Restart: "now", OnFailure: manifest.PolicyStop}, {Package: a1, Env: "api-canary", Config: map[string]string{"A": "2"}}, {Package: a1}}}
	got := DescribeChange(before, after)
	want := []string{
		"hello: hello-20261101T000000Z-0123456789ab → hello-20261102T000000Z-0123456789ac",
		"hello: restart requested",
		"hello: on_failure rollback → stop",
		"api-canary: config {A=1} → {A=2}",
		"+ api: api-20261101T000000Z-0123456789ab",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := DescribeChange(after, nil); strings.Join(got, "|") != "− hello: hello-20261102T000000Z-0123456789ac|− api-canary: api-20261101T000000Z-0123456789ab|− api: api-20261101T000000Z-0123456789ab" {
		t.Errorf("removal: %q", got)
	}
}
