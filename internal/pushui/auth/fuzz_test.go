package auth

import (
	"strings"
	"testing"
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
