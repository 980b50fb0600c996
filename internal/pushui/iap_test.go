package pushui

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/manifest"
	"google.golang.org/api/idtoken"
	"google.golang.org/api/option"
)

// TestTrustedProxy: with an identity header and trusted proxies, a request
// from any other peer is refused (401) whatever headers it carries.
func TestTrustedProxy(t *testing.T) {
	f := newFixture(t)
	s := f.server(func(o *Options) {
		o.AuthHeader = "X-Forwarded-Email"
		o.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("fd00::/8")}
		o.Admins = []string{"ann@example.com"}
	})
	for _, tc := range []struct {
		remote string
		code   int
	}{
		{"10.1.2.3:5555", http.StatusOK},
		{"[fd00::1]:5555", http.StatusOK},
		{"[::ffff:10.1.2.3]:5555", http.StatusOK},
		{"10.2.0.1:5555", http.StatusUnauthorized},
		{"192.0.2.1:1234", http.StatusUnauthorized},
		{"127.0.0.1:1234", http.StatusUnauthorized},
	} {
		req := httptest.NewRequestWithContext(t.Context(), http.MethodGet, "/api/servers", nil)
		req.RemoteAddr = tc.remote
		req.Header.Set("X-Forwarded-Email", "ann@example.com")
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		if w.Code != tc.code {
			t.Errorf("from %s: %d, want %d: %s", tc.remote, w.Code, tc.code, w.Body)
		}
		if tc.code == http.StatusUnauthorized && !strings.Contains(w.Body.String(), "not a -trusted-proxy") {
			t.Errorf("from %s: %s", tc.remote, w.Body)
		}
	}
}

// iapKeys is a stand-in for Google's IAP key endpoint, serving the public
// half of keys the test makes, with a validator that fetches from it.
type iapKeys struct {
	key *ecdsa.PrivateKey
	kid string
	v   *idtoken.Validator
}

func newIAPKeys(t *testing.T) *iapKeys {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := &iapKeys{key: key, kid: "test-key-1"}
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	pub, err := key.PublicKey.ECDH()
	if err != nil {
		t.Fatal(err)
	}
	raw := pub.Bytes() // 0x04 || X || Y
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"alg": "ES256", "crv": "P-256", "kid": k.kid, "kty": "EC", "use": "sig",
		"x": b64(raw[1:33]), "y": b64(raw[33:]),
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/iap/verify/public_key-jwk" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	target, _ := url.Parse(srv.URL)
	// Every request of the validator (www.gstatic.com) goes to srv.
	client := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Scheme, r.URL.Host = target.Scheme, target.Host
		return http.DefaultTransport.RoundTrip(r)
	})}
	if k.v, err = idtoken.NewValidator(t.Context(), option.WithHTTPClient(client)); err != nil {
		t.Fatal(err)
	}
	return k
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// token returns an ES256 JWT signed by key with claims.
func (k *iapKeys) token(t *testing.T, key *ecdsa.PrivateKey, claims map[string]any) string {
	t.Helper()
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	h, _ := json.Marshal(map[string]string{"alg": "ES256", "typ": "JWT", "kid": k.kid})
	c, _ := json.Marshal(claims)
	signed := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signed + "." + b64(sig)
}

// TestIAP: with -iap-audience, the user is the email of IAP's signed
// header, verified against IAP's keys (here keys the test made, served
// where the validator fetches them); a missing, expired, forged or
// misaddressed assertion is refused, and the plain identity headers count
// for nothing.
func TestIAP(t *testing.T) {
	const aud = "/projects/123/global/backendServices/456"
	keys := newIAPKeys(t)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	f := newFixture(t)
	s := f.server(func(o *Options) {
		o.IAP, o.IAPAudience = keys.v, aud
		o.Admins = []string{"ann@example.com"}
	})
	now := time.Now().Unix()
	claims := func(edit func(map[string]any)) map[string]any {
		c := map[string]any{"iss": "https://cloud.google.com/iap", "aud": aud, "exp": now + 600, "iat": now, "sub": "accounts.google.com:1", "email": "ann@example.com"}
		if edit != nil {
			edit(c)
		}
		return c
	}
	for _, tc := range []struct {
		name string
		hdr  []string
		code int
		say  string
	}{
		{"valid", []string{auth.IAPHeader, keys.token(t, keys.key, claims(nil))}, http.StatusOK, ""},
		{"missing", []string{"X-Goog-Authenticated-User-Email", "accounts.google.com:ann@example.com"}, http.StatusUnauthorized, "no X-Goog-Iap-Jwt-Assertion header"},
		{"expired", []string{auth.IAPHeader, keys.token(t, keys.key, claims(func(c map[string]any) { c["exp"] = now - 10 }))}, http.StatusUnauthorized, "expired"},
		{"other audience", []string{auth.IAPHeader, keys.token(t, keys.key, claims(func(c map[string]any) { c["aud"] = "/projects/9/global/backendServices/9" }))}, http.StatusUnauthorized, "audience"},
		{"signed by another key", []string{auth.IAPHeader, keys.token(t, other, claims(nil))}, http.StatusUnauthorized, "signature not valid"},
		{"other issuer", []string{auth.IAPHeader, keys.token(t, keys.key, claims(func(c map[string]any) { c["iss"] = "https://accounts.google.com" }))}, http.StatusUnauthorized, "issuer"},
		{"garbage", []string{auth.IAPHeader, "not.a.jwt"}, http.StatusUnauthorized, "IAP assertion refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := do(t, s, http.MethodGet, "/api/servers", nil, tc.hdr...)
			if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.say) {
				t.Fatalf("%d %s; want %d saying %q", w.Code, w.Body, tc.code, tc.say)
			}
		})
	}
	// The verified user is who writes.
	w := do(t, s, http.MethodPost, "/api/deploy", strings.NewReader(`{"package": "`+f.h3.String()+`", "servers": ["db-1"]}`),
		auth.IAPHeader, keys.token(t, keys.key, claims(nil)), "Content-Type", "application/json")
	wantCode(t, w, http.StatusOK)
	if recs := f.audit("db-1"); len(recs) != 1 || recs[0].User != "ann@example.com" {
		t.Fatalf("audit = %+v, want one record by ann@example.com", recs)
	}
}

// TestConfigValuesMasked: admins see config values in the manifest, the
// history and the env settings; other signed-in users see the keys with
// the values masked, in the pages and the API alike.
func TestConfigValuesMasked(t *testing.T) {
	f := newFixture(t)
	s := f.server(func(o *Options) {
		o.AuthHeader = "X-User"
		o.Admins = []string{"ann"}
	})
	w := do(t, s, http.MethodGet, "/api/servers/web-1", nil, "X-User", "ann")
	wantCode(t, w, http.StatusOK)
	m, err := manifest.Parse(w.Body.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m.Packages[0].Config = map[string]string{"DB_PASSWORD": "hunter2"}
	w = do(t, s, http.MethodPut, "/api/servers/web-1", strings.NewReader(string(m.Marshal())), "X-User", "ann", "If-Match", w.Header().Get("ETag"))
	wantCode(t, w, http.StatusOK)
	for _, path := range []string{"/api/servers/web-1", "/api/servers/web-1/history", "/servers/web-1", "/servers/web-1/apps/hello"} {
		admin := do(t, s, http.MethodGet, path, nil, "X-User", "ann").Body.String()
		viewer := do(t, s, http.MethodGet, path, nil, "X-User", "bob").Body.String()
		if !strings.Contains(admin, "hunter2") {
			t.Errorf("%s: the admin does not see the value", path)
		}
		if strings.Contains(viewer, "hunter2") || !strings.Contains(viewer, "DB_PASSWORD") || !strings.Contains(viewer, manifest.MaskedValue) {
			t.Errorf("%s: a viewer sees the value, or not the key masked:\n%.2000s", path, viewer)
		}
	}
}
