package pushui

import (
	"maps"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/pushpull/pushpull/manifest"
)

func bcryptHash(t testing.TB, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func TestParseHtpasswd(t *testing.T) {
	alice := bcryptHash(t, "wonderland")
	tests := []struct {
		name, data, err string
	}{
		{"ok", "# comment\n\nalice:" + alice + "\n", ""},
		{"2y prefix", "bob:" + strings.Replace(alice, "$2a$", "$2y$", 1) + "\r\n", ""},
		{"no colon", "alice\n", "line 1: want user:hash"},
		{"empty user", ":" + alice, "line 1: bad user name"},
		{"md5", "alice:$apr1$abc$defghijklmnopqrstuvwx1\n", `line 1: user "alice": hash is not bcrypt`},
		{"sha1", "alice:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n", "not bcrypt"},
		{"plain", "alice:wonderland\n", "not bcrypt"},
		{"twice", "alice:" + alice + "\nalice:" + alice + "\n", `line 2: user "alice" listed twice`},
		{"empty", "# nobody\n", "no users"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHtpasswd([]byte(tt.data))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Users() != 1 {
				t.Errorf("%d users", h.Users())
			}
		})
	}

	h, err := ParseHtpasswd([]byte("alice:" + alice + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		user, pw string
		ok       bool
	}{
		{"alice", "wonderland", true},
		{"alice", "wonderland", true}, // from the verified cache
		{"alice", "Wonderland", false},
		{"alice", "", false},
		{"bob", "wonderland", false},
		{"alice", "wonderland", true},
	} {
		if got := h.Verify(c.user, c.pw); got != c.ok {
			t.Errorf("Verify(%q, %q) = %v", c.user, c.pw, got)
		}
	}
}

func TestParseConfigText(t *testing.T) {
	tests := []struct {
		name, text string
		want       map[string]string
		err        string
	}{
		{"empty", "\n  \n# only a comment\n", nil, ""},
		{"values", "A=1\nB_2 = two words \nURL=http://x/?a=b=c\r\n", map[string]string{"A": "1", "B_2": "two words", "URL": "http://x/?a=b=c"}, ""},
		{"empty value", "EMPTY=\n", map[string]string{"EMPTY": ""}, ""},
		{"no equals", "A=1\nJUSTAKEY\n", nil, "config line 2: want KEY=VALUE"},
		{"lower-case key", "log_level=debug", map[string]string{"log_level": "debug"}, ""},
		{"hyphen in key", "log-level=1", nil, `config line 1: config key "log-level"`},
		{"empty key", "=1", nil, "config line 1"},
		{"twice", "A=1\n\nA=2", nil, "config line 3: A given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseConfigText(tt.text)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
			if again, err := parseConfigText(formatConfigText(got)); err != nil || !maps.Equal(again, got) {
				t.Errorf("round trip: %v, %v", again, err)
			}
		})
	}
	if configEditable(map[string]string{"A": "two\nlines"}) || configEditable(map[string]string{"A": " padded"}) || !configEditable(map[string]string{"A": "a b"}) {
		t.Error("configEditable")
	}
}

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
		if got := commitURL(tt.repo, tt.commit); got != tt.want {
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
		if got := ago(now.Add(-tt.d), now); got != tt.want {
			t.Errorf("ago(-%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
	if got := ago(time.Time{}, now); got != "never" {
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
	got := describeChange(before, after)
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
	if got := describeChange(after, nil); strings.Join(got, "|") != "− hello: hello-20261102T000000Z-0123456789ac|− api-canary: api-20261101T000000Z-0123456789ab|− api: api-20261101T000000Z-0123456789ab" {
		t.Errorf("removal: %q", got)
	}
}

func TestConfigCheck(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		err  string
	}{
		{"defaults", Config{Bucket: "mem://", ConfigFile: "c.json"}, ""},
		{"localhost", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "localhost:9000"}, ""},
		{"ipv6 loopback", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "[::1]:9000"}, ""},
		{"127.0.0.2", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "127.0.0.2:9000"}, ""},
		{"all interfaces", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: ":8000"}, "refusing to listen on :8000 without authentication"},
		{"public IP", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "10.0.0.5:8000"}, "refusing to listen"},
		{"a host name", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "pushui.internal:8000"}, "refusing to listen"},
		{"public with header and trusted proxy", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "0.0.0.0:8000", AuthHeader: "X-Forwarded-Email", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, ""},
		{"public with header, no trusted proxy", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "0.0.0.0:8000", AuthHeader: "X-Forwarded-Email"}, "needs -trusted-proxy"},
		{"loopback with header", Config{Bucket: "mem://", Addr: "127.0.0.1:8000", AuthHeader: "X-Forwarded-Email"}, ""},
		{"public with IAP", Config{Bucket: "mem://", Addr: ":8000", IAPAudience: "/projects/1/global/backendServices/2"}, ""},
		{"trusted proxy without header", Config{Bucket: "mem://", TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}, "give -auth-header too"},
		{"IAP and header", Config{Bucket: "mem://", AuthHeader: "X", IAPAudience: "a"}, "not several"},
		{"public with htpasswd", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "0.0.0.0:8000", HtpasswdFile: "h"}, ""},
		{"both auth modes", Config{Bucket: "mem://", ConfigFile: "c.json", AuthHeader: "X", HtpasswdFile: "h"}, "not several"},
		{"admins without auth", Config{Bucket: "mem://", ConfigFile: "c.json", Admins: []string{"a"}}, "-admins needs"},
		{"no bucket", Config{ConfigFile: "c.json"}, "-bucket is required"},
		{"no config file: the bucket's is used", Config{Bucket: "mem://"}, ""},
		{"bad addr", Config{Bucket: "mem://", ConfigFile: "c.json", Addr: "nonsense"}, "-addr nonsense"},
		{"negative refresh", Config{Bucket: "mem://", ConfigFile: "c.json", Refresh: -time.Second}, "-refresh"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Check()
			if tt.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err %v, want %q", err, tt.err)
			}
		})
	}
}
