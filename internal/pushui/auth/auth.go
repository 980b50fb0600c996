package auth

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

// Gate identifies the user of a request and decides what they may do.
type Gate struct {
	header   string         // trusted identity header, when set
	trusted  []netip.Prefix // peers allowed to set header; none: any (a loopback listener)
	htpasswd *Htpasswd      // Basic auth, when set
	iap      *idtoken.Validator
	audience string // IAP's signed-header audience, with iap
	admins   map[string]bool
	refusals *refusals
	log      *slog.Logger
}

// Options configures the authentication (see Options).
type Options struct {
	Header         string
	TrustedProxies []netip.Prefix
	Htpasswd       *Htpasswd
	IAP            *idtoken.Validator
	IAPAudience    string
	Admins         []string
	Logger         *slog.Logger
	Now            func() time.Time
	// Metrics is where the refused sign-ins are counted
	// (pushui_sign_ins_refused_total).
	Metrics prometheus.Registerer
}

// New returns the authentication o describes: at most one of Header,
// Htpasswd and IAP, IAP with its audience.
func New(o Options) (*Gate, error) {
	n := 0
	for _, on := range []bool{o.Header != "", o.Htpasswd != nil, o.IAP != nil} {
		if on {
			n++
		}
	}
	if n > 1 {
		return nil, errors.New("pushui: choose one authentication: an identity header, an htpasswd file or IAP")
	}
	if o.IAP != nil && o.IAPAudience == "" {
		return nil, errors.New("pushui: IAP needs its audience")
	}
	a := &Gate{header: o.Header, trusted: o.TrustedProxies, htpasswd: o.Htpasswd, iap: o.IAP, audience: o.IAPAudience, admins: map[string]bool{}, log: o.Logger}
	for _, u := range o.Admins {
		if u = strings.TrimSpace(u); u != "" {
			a.admins[u] = true
		}
	}
	a.refusals = &refusals{log: o.Logger, now: o.Now, seen: map[string]*refusedPair{},
		counter: prometheus.NewCounter(prometheus.CounterOpts{Name: "pushui_sign_ins_refused_total", Help: "Sign-ins refused: an unknown user or a wrong password (HTTP Basic, -htpasswd)."})}
	if err := o.Metrics.Register(a.refusals.counter); err != nil {
		return nil, fmt.Errorf("pushui: %w", err)
	}
	return a, nil
}

// enabled reports whether requests are authenticated at all.
func (a *Gate) enabled() bool { return a.header != "" || a.htpasswd != nil || a.iap != nil }

// identify returns the request's user, or "" and why when the request
// carries no acceptable identity.
func (a *Gate) identify(r *http.Request) (string, string) {
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
func (a *Gate) fromTrusted(r *http.Request) bool {
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
func (a *Gate) identifyIAP(r *http.Request) (string, string) {
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
func (a *Gate) isAdmin(user string) bool {
	if !a.enabled() {
		return true
	}
	return a.admins[user]
}

// Caller is who made a request, as the authentication middleware found.
type Caller struct {
	Name  string
	Admin bool // may change manifests
	Auth  bool // requests are authenticated at all
}

type ctxKey int

const callerKey ctxKey = 0

// CallerOf returns the authenticated caller of a request's context (the
// zero caller, who may not write, outside the middleware).
func CallerOf(ctx context.Context) Caller {
	c, _ := ctx.Value(callerKey).(Caller)
	return c
}

// User returns the authenticated user of a request's context.
func User(ctx context.Context) string { return CallerOf(ctx).Name }

// ForViewer returns m as the request's user may see it: whole for admins
// (and without authentication), with every config value masked
// (manifest.Manifest.Masked) for other signed-in users, since values often
// carry secrets. m is not modified.
func ForViewer(ctx context.Context, m *manifest.Manifest) *manifest.Manifest {
	if m == nil || CallerOf(ctx).Admin {
		return m
	}
	return m.Masked()
}

// Viewer returns forViewer for ctx's caller.
func Viewer(ctx context.Context) func(*manifest.Manifest) *manifest.Manifest {
	return func(m *manifest.Manifest) *manifest.Manifest { return ForViewer(ctx, m) }
}

// Protect wraps h in pushui's request checks: cross-origin writes are
// refused (http.CrossOriginProtection), then authenticate.
func (a *Gate) Protect(h http.Handler, fail func(w http.ResponseWriter, r *http.Request, code int, msg string)) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"), "sec_fetch_site", r.Header.Get("Sec-Fetch-Site"))
		fail(w, r, http.StatusForbidden, "cross-origin request refused: changes can only be made from pushui's own pages")
	}))
	return cop.Handler(a.authenticate(h, fail))
}

// authenticate identifies the user and refuses what they may not do:
// anyone unidentified gets 401, and a non-admin gets 403 for every
// state-changing request except a refresh of the cached view. /healthz
// and /metrics are served to anyone. fail answers the refusals.
func (a *Gate) authenticate(h http.Handler, fail func(w http.ResponseWriter, r *http.Request, code int, msg string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/metrics" {
			h.ServeHTTP(w, r)
			return
		}
		user, why := a.identify(r)
		if user == "" {
			if a.htpasswd != nil {
				w.Header().Set("WWW-Authenticate", `Basic realm="pushui", charset="UTF-8"`)
				if u, _, ok := r.BasicAuth(); ok {
					a.refusals.refused(u, r.RemoteAddr)
				}
			}
			if a.htpasswd == nil { // a browser's first request to a Basic realm is not news
				a.log.Warn("request refused: no identity", "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path, "why", why)
			}
			fail(w, r, http.StatusUnauthorized, why)
			return
		}
		c := Caller{Name: user, Admin: a.isAdmin(user), Auth: a.enabled()}
		safe := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
		if !safe && r.URL.Path != "/refresh" && !c.Admin {
			a.log.Warn("write refused", "user", user, "method", r.Method, "path", r.URL.Path)
			fail(w, r, http.StatusForbidden, user+" may look but not change anything (not in -admins)")
			return
		}
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), callerKey, c)))
	})
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
