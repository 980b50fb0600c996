package pushui

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"
)

// LocalUser is the name recorded in the audit log for requests served
// without authentication, which Run allows only on a loopback address.
const LocalUser = "local"

// Htpasswd is a parsed htpasswd file whose passwords are bcrypt hashes
// (htpasswd -B). It is safe for concurrent use.
//
// bcrypt is deliberately slow, and a browser sends Basic credentials with
// every request, so Verify remembers the credentials it has accepted (as an
// HMAC under a per-process random key, never the password itself) and
// answers repeated requests without running bcrypt again.
type Htpasswd struct {
	users map[string][]byte // user → bcrypt hash

	key []byte // HMAC key for the verified-credentials cache
	mu  sync.Mutex
	ok  map[string][sha256.Size]byte // user → HMAC of a password that verified
}

// ParseHtpasswd parses an htpasswd file: one "user:hash" per line, blank
// lines and lines starting with # ignored. Every hash must be bcrypt
// ($2a$, $2b$ or $2y$); MD5, SHA-1 and crypt hashes are refused, as are
// duplicate users and empty names. Errors name the line.
func ParseHtpasswd(data []byte) (*Htpasswd, error) {
	h := &Htpasswd{users: make(map[string][]byte), ok: make(map[string][sha256.Size]byte)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		user, hash, ok := strings.Cut(line, ":")
		switch {
		case !ok:
			return nil, fmt.Errorf("htpasswd: line %d: want user:hash", n)
		case user == "" || strings.ContainsAny(user, " \t"):
			return nil, fmt.Errorf("htpasswd: line %d: bad user name %q", n, user)
		case h.users[user] != nil:
			return nil, fmt.Errorf("htpasswd: line %d: user %q listed twice", n, user)
		}
		if _, err := bcrypt.Cost([]byte(hash)); err != nil || !isBcryptPrefix(hash) {
			return nil, fmt.Errorf("htpasswd: line %d: user %q: hash is not bcrypt (create it with htpasswd -B)", n, user)
		}
		h.users[user] = []byte(hash)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("htpasswd: %w", err)
	}
	if len(h.users) == 0 {
		return nil, errors.New("htpasswd: no users")
	}
	h.key = make([]byte, 32)
	_, _ = rand.Read(h.key)
	return h, nil
}

func isBcryptPrefix(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

// Users returns the number of users in the file.
func (h *Htpasswd) Users() int { return len(h.users) }

// Verify reports whether password is user's password.
func (h *Htpasswd) Verify(user, password string) bool {
	hash, found := h.users[user]
	if !found {
		// Spend the same time as for a known user, so response times do
		// not tell which names exist.
		_ = bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return false
	}
	mac := hmac.New(sha256.New, h.key)
	mac.Write([]byte(user))
	mac.Write([]byte{0})
	mac.Write([]byte(password))
	var sum [sha256.Size]byte
	copy(sum[:], mac.Sum(nil))
	h.mu.Lock()
	prev, cached := h.ok[user]
	h.mu.Unlock()
	if cached && hmac.Equal(prev[:], sum[:]) {
		return true
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil {
		return false
	}
	h.mu.Lock()
	h.ok[user] = sum
	h.mu.Unlock()
	return true
}

// dummyHash returns a bcrypt hash of a random password, compared against
// when the user is unknown. It is made on first use.
var dummyHash = sync.OnceValue(func() []byte {
	pw := make([]byte, 16)
	_, _ = rand.Read(pw)
	h, err := bcrypt.GenerateFromPassword(pw, bcrypt.DefaultCost)
	if err != nil {
		panic(err)
	}
	return h
})

// auth identifies the user of a request and decides what they may do.
type auth struct {
	header   string    // trusted identity header, when set
	htpasswd *Htpasswd // Basic auth, when set
	admins   map[string]bool
}

// enabled reports whether requests are authenticated at all.
func (a *auth) enabled() bool { return a.header != "" || a.htpasswd != nil }

// identify returns the request's user, or "" when the request carries no
// acceptable identity.
func (a *auth) identify(r *http.Request) string {
	switch {
	case a.header != "":
		v := strings.TrimSpace(r.Header.Get(a.header))
		// Google IAP prefixes the address with the identity provider.
		v = strings.TrimPrefix(v, "accounts.google.com:")
		return v
	case a.htpasswd != nil:
		u, p, ok := r.BasicAuth()
		if !ok || !a.htpasswd.Verify(u, p) {
			return ""
		}
		return u
	}
	return LocalUser
}

// isAdmin reports whether user may change manifests. Without
// authentication every request may (Run allows that only on loopback).
func (a *auth) isAdmin(user string) bool {
	if !a.enabled() {
		return true
	}
	return a.admins[user]
}

type ctxKey int

const userKey ctxKey = 0

// userOf returns the authenticated user of a request's context.
func userOf(ctx context.Context) string {
	u, _ := ctx.Value(userKey).(string)
	return u
}
