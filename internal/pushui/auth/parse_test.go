package auth

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
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
