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
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"golang.org/x/crypto/bcrypt"
	"google.golang.org/api/idtoken"

	"github.com/pushpull/pushpull/manifest"
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

// HtpasswdLine returns "user:hash", password's bcrypt hash as
// htpasswd -B makes it, for an htpasswd file ParseHtpasswd reads. The
// password must not be empty; the user name must be one ParseHtpasswd
// takes.
func HtpasswdLine(user string, password []byte) (string, error) {
	switch {
	case user == "" || strings.ContainsAny(user, " \t:\n"):
		return "", fmt.Errorf("htpasswd: bad user name %q", user)
	case len(password) == 0:
		return "", errors.New("htpasswd: empty password")
	}
	hash, err := bcrypt.GenerateFromPassword(password, bcrypt.DefaultCost)
	if err != nil {
		return "", fmt.Errorf("htpasswd: %w", err)
	}
	return user + ":" + string(hash), nil
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

// IAPHeader carries the signed JWT Google's Identity-Aware Proxy adds to
// every request it lets through.
const IAPHeader = "X-Goog-Iap-Jwt-Assertion"

// iapIssuer is the issuer of IAP's JWTs.
const iapIssuer = "https://cloud.google.com/iap"

// auth identifies the user of a request and decides what they may do.
type auth struct {
	header   string         // trusted identity header, when set
	trusted  []netip.Prefix // peers allowed to set header; none: any (a loopback listener)
	htpasswd *Htpasswd      // Basic auth, when set
	iap      *idtoken.Validator
	audience string // IAP's signed-header audience, with iap
	admins   map[string]bool
}

// enabled reports whether requests are authenticated at all.
func (a *auth) enabled() bool { return a.header != "" || a.htpasswd != nil || a.iap != nil }

// identify returns the request's user, or "" and why when the request
// carries no acceptable identity.
func (a *auth) identify(r *http.Request) (string, string) {
	switch {
	case a.iap != nil:
		return a.identifyIAP(r)
	case a.header != "":
		if !a.fromTrusted(r) {
			return "", "request from " + r.RemoteAddr + ", which is not a -trusted-proxy: pushui must be reached through its authenticating proxy"
		}
		v := strings.TrimSpace(r.Header.Get(a.header))
		// Google IAP prefixes the address with the identity provider.
		v = strings.TrimPrefix(v, "accounts.google.com:")
		if v == "" {
			return "", "no identity in header " + a.header + ": pushui must be reached through its authenticating proxy"
		}
		return v, ""
	case a.htpasswd != nil:
		u, p, ok := r.BasicAuth()
		if !ok || !a.htpasswd.Verify(u, p) {
			return "", "sign in to use pushui"
		}
		return u, ""
	}
	return LocalUser, ""
}

// fromTrusted reports whether the request's peer may set the identity
// header: it is in a trusted prefix, or no prefix is configured.
func (a *auth) fromTrusted(r *http.Request) bool {
	if len(a.trusted) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range a.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// identifyIAP verifies IAP's signed header (signature against Google's IAP
// keys, expiry, audience, issuer) and returns its email claim.
func (a *auth) identifyIAP(r *http.Request) (string, string) {
	tok := r.Header.Get(IAPHeader)
	if tok == "" {
		return "", "no " + IAPHeader + " header: pushui must be reached through Identity-Aware Proxy"
	}
	p, err := a.iap.Validate(r.Context(), tok, a.audience)
	if err != nil {
		return "", "IAP assertion refused: " + err.Error()
	}
	if p.Issuer != iapIssuer {
		return "", fmt.Sprintf("IAP assertion refused: issuer %q is not %s", p.Issuer, iapIssuer)
	}
	email, _ := p.Claims["email"].(string)
	if email == "" {
		return "", "IAP assertion refused: no email claim"
	}
	return email, ""
}

// ParseTrustedProxies parses -trusted-proxy: comma-separated CIDR
// prefixes or single addresses.
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if !strings.Contains(item, "/") {
			a, err := netip.ParseAddr(item)
			if err != nil {
				return nil, fmt.Errorf("trusted proxy %q: not an address or CIDR prefix", item)
			}
			item = netip.PrefixFrom(a, a.BitLen()).String()
		}
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: %w", item, err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
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

// maskedValue replaces config values shown to users who are not admins.
const maskedValue = "•••"

// forViewer returns m as the request's user may see it: whole for admins
// (and without authentication), with every config value replaced by
// maskedValue for other signed-in users, since values often carry secrets.
// The keys stay, so everyone sees what is configured. m is not modified.
func (s *Server) forViewer(ctx context.Context, m *manifest.Manifest) *manifest.Manifest {
	if m == nil || s.auth.isAdmin(userOf(ctx)) {
		return m
	}
	masked := m.Clone()
	for i := range masked.Packages {
		for k := range masked.Packages[i].Config {
			masked.Packages[i].Config[k] = maskedValue
		}
	}
	return masked
}

// refusedEvery is how often a refused sign-in of one user from one peer
// is logged; the refusals between are counted in the next line.
const refusedEvery = time.Minute

// maxRefusedTracked bounds the (user, peer) pairs refusals remembers: a
// flood of made-up names must not grow it without end.
const maxRefusedTracked = 10000

// refusals logs refused sign-ins (a wrong password and an unknown user
// alike: the answer is the same 401) once per user and peer per
// refusedEvery, and counts every one in a metric. It is safe for
// concurrent use.
type refusals struct {
	log     *slog.Logger
	counter prometheus.Counter
	now     func() time.Time

	mu   sync.Mutex
	seen map[string]*refusedPair
}

type refusedPair struct {
	logged     time.Time
	suppressed int
}

// refused records that user's sign-in from peer (host:port) was refused.
func (f *refusals) refused(user, peer string) {
	f.counter.Inc()
	if host, _, err := net.SplitHostPort(peer); err == nil {
		peer = host
	}
	key := user + "\x00" + peer
	now := f.now()
	f.mu.Lock()
	p := f.seen[key]
	if p == nil {
		if len(f.seen) >= maxRefusedTracked {
			clear(f.seen)
		}
		p = &refusedPair{}
		f.seen[key] = p
	}
	if !p.logged.IsZero() && now.Sub(p.logged) < refusedEvery {
		p.suppressed++
		f.mu.Unlock()
		return
	}
	more := p.suppressed
	p.logged, p.suppressed = now, 0
	f.mu.Unlock()
	f.log.Warn("sign-in refused", "user", user, "peer", peer, "refused_since_last_line", more)
}
