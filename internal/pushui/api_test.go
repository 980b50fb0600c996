package pushui

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/manifest"
	"golang.org/x/crypto/bcrypt"
)

func decode[T any](t *testing.T, w *httptest.ResponseRecorder) T {
	t.Helper()
	var v T
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type %q, want application/json; body %s", ct, w.Body)
	}
	if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
		t.Fatalf("decode %s: %v", w.Body, err)
	}
	return v
}

type apiErr struct {
	Error   string          `json:"error"`
	Current json.RawMessage `json:"current"`
}

// TestAPIServers checks GET /api/servers: desired and actual per server.
func TestAPIServers(t *testing.T) {
	f := newFixture(t)
	w := do(t, f.server(), http.MethodGet, "/api/servers", nil)
	wantCode(t, w, http.StatusOK)
	out := decode[struct {
		Servers []client.ServerInfo `json:"servers"`
	}](t, w)
	var names []string
	by := map[string]client.ServerInfo{}
	for _, s := range out.Servers {
		names = append(names, s.Name)
		by[s.Name] = s
	}
	if strings.Join(names, ",") != "db-1,old-1,web-1,web-2" {
		t.Fatalf("servers %v", names)
	}
	web1 := by["web-1"]
	_, v := f.manifest("web-1")
	if web1.Version != strings.Trim(string(v), `"`) || !web1.InConfig || !slices.Equal(web1.Groups, []string{"web"}) {
		t.Errorf("web-1: version %q (want %q), in_config %v, groups %v", web1.Version, v, web1.InConfig, web1.Groups)
	}
	m, err := manifest.Parse(web1.Manifest)
	if err != nil || len(m.Packages) != 2 {
		t.Fatalf("web-1 manifest: %v %s", err, web1.Manifest)
	}
	if web1.Status == nil || web1.Status.Host.Hostname != "web-1.internal" {
		t.Fatalf("web-1 status %+v", web1.Status)
	}
	if es, _ := web1.Status.Lookup("api"); es.Output != "" || es.Error == "" {
		t.Errorf("the list carries script output (%q) or lost the error (%q)", es.Output, es.Error)
	}
	envs := map[string]client.EnvInfo{}
	for _, e := range web1.Envs {
		envs[e.Env] = e
	}
	if e := envs["hello"]; e.Drift || e.Failed || !e.NewerAvailable || e.Desired != f.h2.String() || e.Serving != f.h2.String() {
		t.Errorf("web-1 hello %+v", e)
	}
	if e := envs["api"]; e.Drift || !e.Failed || e.State != "FAILED" || e.Serving != "" { // a failure, not drift
		t.Errorf("web-1 api %+v", e)
	}
	if !by["web-2"].Stale || by["web-1"].Stale {
		t.Errorf("stale: web-2 %v, web-1 %v", by["web-2"].Stale, by["web-1"].Stale)
	}
	if by["db-1"].Status != nil || len(by["db-1"].Envs) != 0 || by["db-1"].Version != "" {
		t.Errorf("db-1 %+v", by["db-1"])
	}
	if by["old-1"].InConfig {
		t.Error("old-1 is not in the config")
	}

	w = do(t, f.server(), http.MethodGet, "/api/servers?app=api&server=web", nil)
	filtered := decode[struct {
		Servers []client.ServerInfo `json:"servers"`
	}](t, w)
	if len(filtered.Servers) != 2 || len(filtered.Servers[0].Envs) != 1 || filtered.Servers[0].Envs[0].App != "api" {
		t.Errorf("filtered %+v", filtered.Servers)
	}

	w = do(t, f.server(), http.MethodGet, "/api/servers/web-1/status", nil)
	wantCode(t, w, http.StatusOK)
	st := decode[manifest.Status](t, w)
	if es, _ := st.Lookup("api"); es.Output != "health check failed: connection refused\n" {
		t.Errorf("status output %q", es.Output)
	}
	wantCode(t, do(t, f.server(), http.MethodGet, "/api/servers/db-1/status", nil), http.StatusNotFound)
}

// TestAPIManifest checks GET and PUT of a manifest with ETag / If-Match.
func TestAPIManifest(t *testing.T) {
	f := newFixture(t)
	s := f.server()

	w := do(t, s, http.MethodGet, "/api/servers/web-1", nil)
	wantCode(t, w, http.StatusOK)
	m, v := f.manifest("web-1")
	etag := w.Header().Get("ETag")
	if etag != `"`+string(v)+`"` {
		t.Fatalf("ETag %q, want the quoted version %q", etag, v)
	}
	if w.Body.String() != string(m.Marshal()) {
		t.Fatalf("body %s, want the canonical manifest %s", w.Body, m.Marshal())
	}

	edited := func(p ...manifest.PackageName) string {
		e := &manifest.Manifest{Revision: 999} // the written revision is one more than this or the current one, whichever is higher
		for _, x := range p {
			e.Packages = append(e.Packages, manifest.Entry{Package: x})
		}
		return string(e.Marshal())
	}
	put := func(server, body string, hdr ...string) *httptest.ResponseRecorder {
		return do(t, s, http.MethodPut, "/api/servers/"+server, strings.NewReader(body), append([]string{"Content-Type", "application/json"}, hdr...)...)
	}

	refused := []struct {
		name string
		body string
		hdr  []string
		code int
		say  string
	}{
		{"no If-Match", edited(f.h3), nil, http.StatusPreconditionRequired, "PUT needs If-Match"},
		{"stale If-Match", edited(f.h3), []string{"If-Match", `"0123456789"`}, http.StatusPreconditionFailed, "changed since it was read"},
		{"weak If-Match never matches", edited(f.h3), []string{"If-Match", "W/" + etag}, http.StatusPreconditionFailed, "changed since it was read"},
		{"unquoted If-Match", edited(f.h3), []string{"If-Match", string(v)}, http.StatusPreconditionFailed, "changed"},
		{"If-None-Match on an existing manifest", edited(f.h3), []string{"If-None-Match", "*"}, http.StatusPreconditionFailed, "changed"},
		{"duplicate env", `{"packages": ["` + f.h1.String() + `", "` + f.h2.String() + `"]}`, []string{"If-Match", etag}, http.StatusBadRequest, `packages[1] (` + f.h2.String() + `): env "hello" already used by packages[0]`},
		{"unknown field", `{"packages": [], "extra": 1}`, []string{"If-Match", etag}, http.StatusBadRequest, `unknown field "extra"`},
		{"bad package name", `{"packages": ["hello/nope.tar.zst"]}`, []string{"If-Match", etag}, http.StatusBadRequest, "packages[0]"},
		{"bad config key", `{"packages": [{"package": "` + f.h1.String() + `", "config": {"lo-wer": "x"}}]}`, []string{"If-Match", etag}, http.StatusBadRequest, `config key "lo-wer"`},
		{"app not allowed", edited(f.h1, mustName(t, "db/db-20261101T000000Z-0123456789ab.tar.zst")), []string{"If-Match", etag}, http.StatusBadRequest, "packages[1] (db/db-20261101T000000Z-0123456789ab.tar.zst): app db is not allowed on server web-1"},
		{"package not in the bucket", edited(mustName(t, "hello/hello-20200101T000000Z-0123456789ab.tar.zst")), []string{"If-Match", etag}, http.StatusBadRequest, "does not exist in the bucket"},
		{"not JSON", `packages: []`, []string{"If-Match", etag}, http.StatusBadRequest, "invalid manifest"},
		// Only an explicit empty list removes everything.
		{"null", `null`, []string{"If-Match", etag}, http.StatusBadRequest, `not a JSON object with a "packages" list`},
		{"empty object", `{}`, []string{"If-Match", etag}, http.StatusBadRequest, `no "packages" list`},
		{"revision only", `{"revision": 9}`, []string{"If-Match", etag}, http.StatusBadRequest, `no "packages" list`},
		{"packages null", `{"packages": null}`, []string{"If-Match", etag}, http.StatusBadRequest, `no "packages" list`},
		{"empty body", ``, []string{"If-Match", etag}, http.StatusBadRequest, `empty file`},
		{"duplicate key", `{"revision": 1, "revision": 2, "packages": []}`, []string{"If-Match", etag}, http.StatusBadRequest, `duplicate key "revision"`},
		{"larger than 1 MiB", `{"packages": []}` + strings.Repeat(" ", 1<<20), []string{"If-Match", etag}, http.StatusRequestEntityTooLarge, "larger than 1048576 bytes"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot()
			w := put("web-1", tt.body, tt.hdr...)
			wantCode(t, w, tt.code)
			e := decode[apiErr](t, w)
			if !strings.Contains(e.Error, tt.say) {
				t.Errorf("error %q, want it to say %q", e.Error, tt.say)
			}
			if tt.code == http.StatusPreconditionFailed {
				if cur, err := manifest.Parse(e.Current); err != nil || string(cur.Marshal()) != string(m.Marshal()) {
					t.Errorf("412 body does not carry the current manifest: %s", e.Current)
				}
				if w.Header().Get("ETag") != etag {
					t.Errorf("412 ETag %q, want the current %q", w.Header().Get("ETag"), etag)
				}
			}
			if after := f.snapshot(); after != before {
				t.Error("the bucket changed")
			}
			if n := len(f.nudges.servers()); n != 0 {
				t.Errorf("%d nudges", n)
			}
		})
	}

	t.Run("accepted", func(t *testing.T) {
		w := put("web-1", edited(f.h3, f.a1), "If-Match", etag)
		wantCode(t, w, http.StatusOK)
		got, nv := f.manifest("web-1")
		if got.Revision != 1000 || len(got.Packages) != 2 || got.Packages[0].Package != f.h3 {
			t.Fatalf("bucket has %s", got.Marshal())
		}
		if w.Header().Get("ETag") != `"`+string(nv)+`"` || w.Body.String() != string(got.Marshal()) {
			t.Errorf("response ETag %q body %s; bucket %q %s", w.Header().Get("ETag"), w.Body, nv, got.Marshal())
		}
		if recs := f.audit("web-1"); len(recs) != 1 || recs[0].Action != "put manifest" || recs[0].Before == nil {
			t.Errorf("audit %+v", recs)
		}
		if got := f.nudges.servers(); !slices.Equal(got, []string{"web-1"}) {
			t.Errorf("nudged %v", got)
		}
		// The history has it, before → after.
		hw := do(t, s, http.MethodGet, "/api/servers/web-1/history?limit=5", nil)
		wantCode(t, hw, http.StatusOK)
		hist := decode[struct {
			Records []client.Record `json:"records"`
		}](t, hw)
		if len(hist.Records) != 1 || hist.Records[0].Action != "put manifest" || hist.Records[0].User != auth.LocalUser ||
			!slices.Contains(hist.Records[0].Changes, "hello: "+f.h2.ID()+" → "+f.h3.ID()) {
			t.Errorf("history %+v", hist.Records)
		}
		if b, err := manifest.Parse(hist.Records[0].Before); err != nil || b.Packages[0].Package != f.h2 {
			t.Errorf("history before: %s (%v)", hist.Records[0].Before, err)
		}
		wantCode(t, do(t, s, http.MethodGet, "/api/servers/web-1/history?limit=0", nil), http.StatusBadRequest)
		// The old ETag is now stale.
		wantCode(t, put("web-1", edited(f.h1), "If-Match", etag), http.StatusPreconditionFailed)
		// A body with a lower revision still moves the revision forward.
		w = put("web-1", `{"revision": 1, "packages": ["`+f.h2.String()+`"]}`, "If-Match", `"`+string(nv)+`"`)
		wantCode(t, w, http.StatusOK)
		if got, _ := f.manifest("web-1"); got.Revision != 1001 {
			t.Errorf("revision %d, want 1001", got.Revision)
		}
	})

	t.Run("create with If-None-Match", func(t *testing.T) {
		wantCode(t, do(t, s, http.MethodGet, "/api/servers/db-1", nil), http.StatusOK)
		if e := do(t, s, http.MethodGet, "/api/servers/db-1", nil).Header().Get("ETag"); e != "" {
			t.Errorf("absent manifest has ETag %q", e)
		}
		w := put("db-1", edited(f.h1), "If-None-Match", "*")
		wantCode(t, w, http.StatusOK)
		if got := f.desired("db-1", "hello"); got != f.h1.String() {
			t.Errorf("db-1 hello = %q", got)
		}
		if recs := f.audit("db-1"); len(recs) != 1 || recs[0].Before != nil {
			t.Errorf("audit of a creation %+v", recs)
		}
		wantCode(t, put("db-1", edited(f.h2), "If-None-Match", "*"), http.StatusPreconditionFailed)
	})

	t.Run("unchanged entries of disallowed apps may stay", func(t *testing.T) {
		_, v := f.manifest("old-1")
		w := put("old-1", edited(f.h1), "If-Match", `"`+string(v)+`"`)
		wantCode(t, w, http.StatusOK)
		wantCode(t, put("old-1", edited(f.h2), "If-Match", w.Header().Get("ETag")), http.StatusBadRequest)
	})

	t.Run("unknown server", func(t *testing.T) {
		wantCode(t, do(t, s, http.MethodGet, "/api/servers/nope", nil), http.StatusNotFound)
		wantCode(t, put("nope", edited(), "If-None-Match", "*"), http.StatusNotFound)
		wantCode(t, do(t, s, http.MethodGet, "/api/servers/Bad_Name", nil), http.StatusBadRequest)
	})

	t.Run("a broken manifest can be replaced, not edited", func(t *testing.T) {
		key, err := blobstore.ManifestKey(manifest.Server("web-2"))
		if err != nil {
			t.Fatal(err)
		}
		if err := f.store.Put(t.Context(), key, []byte(`{"packages": [42]}`)); err != nil {
			t.Fatal(err)
		}
		w := do(t, s, http.MethodGet, "/api/servers/web-2", nil)
		wantCode(t, w, http.StatusConflict)
		betag := w.Header().Get("ETag")
		wantCode(t, postForm(t, s, "/servers/web-2/apps/hello/deploy", url.Values{"package": {f.h1.String()}, "version": {strings.Trim(betag, `"`)}}), http.StatusConflict)
		wantCode(t, put("web-2", edited(f.h1), "If-Match", betag), http.StatusOK)
		if got := f.desired("web-2", "hello"); got != f.h1.String() {
			t.Errorf("web-2 hello = %q", got)
		}
	})
}

func mustName(t *testing.T, s string) manifest.PackageName {
	t.Helper()
	p, err := manifest.ParsePackageName(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestAPIPackages checks GET /api/apps/{app}/packages.
func TestAPIPackages(t *testing.T) {
	f := newFixture(t)
	w := do(t, f.server(), http.MethodGet, "/api/apps/api/packages", nil)
	wantCode(t, w, http.StatusOK)
	out := decode[struct {
		App      string               `json:"app"`
		Packages []client.PackageInfo `json:"packages"`
	}](t, w)
	if out.App != "api" || len(out.Packages) != 2 {
		t.Fatalf("%+v", out)
	}
	p := out.Packages[0]
	if p.Name != f.a2.String() || !p.Dirty || p.Note != "trying a fix" || p.User != "alice" || len(p.SHA256) != 64 || p.Commit != "aaaaaaaaaa02aaaaaaaaaaaaaaaaaaaaaaaaaaaa" || p.Size == 0 {
		t.Errorf("newest %+v", p)
	}
	if out.Packages[1].Name != f.a1.String() || out.Packages[1].Repo != "ssh://example.com/api" {
		t.Errorf("second %+v", out.Packages[1])
	}
	wantCode(t, do(t, f.server(), http.MethodGet, "/api/apps/BAD/packages", nil), http.StatusBadRequest)
	w = do(t, f.server(), http.MethodGet, "/api/apps/none/packages", nil)
	wantCode(t, w, http.StatusOK)
	if !strings.Contains(w.Body.String(), `"packages":[]`) {
		t.Errorf("empty app: %s", w.Body)
	}
}

// TestAPIDeploy checks POST /api/deploy on many servers.
func TestAPIDeploy(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	post := func(body string) *httptest.ResponseRecorder {
		return do(t, s, http.MethodPost, "/api/deploy", strings.NewReader(body), "Content-Type", "application/json")
	}
	type results struct {
		Results []client.DeployResult `json:"results"`
	}
	refused := []struct{ name, body, say string }{
		{"app not allowed on a listed server", `{"package": "` + f.a1.String() + `", "servers": ["web-1", "db-1"]}`, "not allowed on server db-1"},
		{"unknown server", `{"package": "` + f.h1.String() + `", "servers": ["web-1", "nope"]}`, "server nope"},
		{"missing package", `{"package": "hello/hello-20200101T000000Z-0123456789ab.tar.zst", "servers": ["web-1"]}`, "does not exist"},
		{"no servers", `{"package": "` + f.h1.String() + `"}`, "no servers"},
		{"servers and group", `{"package": "` + f.h1.String() + `", "servers": ["web-1"], "group": "web"}`, "not both"},
		{"unknown group", `{"package": "` + f.h1.String() + `", "group": "nope"}`, `group nope`},
		{"app not allowed on the group", `{"package": "` + f.a1.String() + `", "group": "db"}`, "not allowed on group db"},
		{"unknown field", `{"package": "` + f.h1.String() + `", "server": "web-1"}`, "unknown field"},
		{"bad name", `{"package": "x", "servers": ["web-1"]}`, "invalid package name"},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot()
			w := post(tt.body)
			wantCode(t, w, http.StatusBadRequest)
			if e := decode[apiErr](t, w); !strings.Contains(e.Error, tt.say) {
				t.Errorf("error %q, want %q", e.Error, tt.say)
			}
			if f.snapshot() != before {
				t.Error("the bucket changed")
			}
		})
	}
	t.Run("servers", func(t *testing.T) {
		w := post(`{"package": "` + f.h1.String() + `", "servers": ["web-1", "web-2"]}`)
		wantCode(t, w, http.StatusOK)
		out := decode[results](t, w)
		for i, server := range []string{"web-1", "web-2"} {
			r := out.Results[i]
			_, v := f.manifest(server)
			if r.Server != server || !r.Changed || r.Revision != 2 || r.Version != string(v) {
				t.Errorf("result %+v (bucket version %s)", r, v)
			}
			if got := f.desired(server, "hello"); got != f.h1.String() {
				t.Errorf("%s hello = %s", server, got)
			}
		}
		if f.desired("web-1", "api") != f.a1.String() || f.desired("web-2", "api") != f.a2.String() {
			t.Error("deploying hello touched api")
		}
	})
	t.Run("group: one write of the group manifest", func(t *testing.T) {
		before := f.snapshot()
		w := post(`{"package": "` + f.a2.String() + `", "group": "web"}`)
		wantCode(t, w, http.StatusOK)
		out := decode[results](t, w)
		if len(out.Results) != 1 || out.Results[0].Group != "web" || !out.Results[0].Changed || out.Results[0].Revision != 1 {
			t.Errorf("results %+v", out.Results)
		}
		m, _, err := f.store.ReadManifest(t.Context(), manifest.Group("web"))
		if e, ok := m.Lookup("api"); err != nil || !ok || e.Package != f.a2 {
			t.Errorf("groups/web.json = %+v, %v; want api at %s", m, err, f.a2)
		}
		if f.snapshot() != before {
			t.Error("a server's manifest changed: a group deploy writes only the group's")
		}
		if got := f.nudges.servers(); !slices.Contains(got, "group:web") {
			t.Errorf("nudged %v, want group:web", got)
		}
		f.nudges.mu.Lock()
		members := slices.Clone(f.nudges.members)
		f.nudges.mu.Unlock()
		if !slices.Equal(members, []int{2}) {
			t.Errorf("group nudge sized for %v members, want the 2 whose status names web", members)
		}
	})
}

// TestAuth covers the two authentication modes and the admin rule.
func TestAuth(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	vhash, _ := bcrypt.GenerateFromPassword([]byte("look"), bcrypt.MinCost)
	ht, err := auth.ParseHtpasswd([]byte("# users\nalice:" + string(hash) + "\nvic:" + string(vhash) + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t)
	deploy := `{"package": "` + f.h1.String() + `", "servers": ["web-1"]}`
	basic := func(u, p string) string {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	tests := []struct {
		name   string
		opts   func(*Options)
		method string
		target string
		hdr    []string
		code   int
	}{
		{"htpasswd: no credentials", htpasswdOpts(ht), "GET", "/", nil, http.StatusUnauthorized},
		{"htpasswd: wrong password", htpasswdOpts(ht), "GET", "/api/servers", []string{"Authorization", basic("alice", "nope")}, http.StatusUnauthorized},
		{"htpasswd: unknown user", htpasswdOpts(ht), "GET", "/api/servers", []string{"Authorization", basic("mallory", "s3cret")}, http.StatusUnauthorized},
		{"htpasswd: viewer reads", htpasswdOpts(ht), "GET", "/", []string{"Authorization", basic("vic", "look")}, http.StatusOK},
		{"htpasswd: viewer cannot deploy", htpasswdOpts(ht), "POST", "/api/deploy", []string{"Authorization", basic("vic", "look")}, http.StatusForbidden},
		{"htpasswd: viewer cannot PUT", htpasswdOpts(ht), "PUT", "/api/servers/web-1", []string{"Authorization", basic("vic", "look"), "If-Match", `"x"`}, http.StatusForbidden},
		{"htpasswd: viewer may refresh", htpasswdOpts(ht), "POST", "/refresh", []string{"Authorization", basic("vic", "look")}, http.StatusSeeOther},
		{"htpasswd: admin deploys", htpasswdOpts(ht), "POST", "/api/deploy", []string{"Authorization", basic("alice", "s3cret")}, http.StatusOK},
		{"htpasswd: health needs no credentials", htpasswdOpts(ht), "GET", "/healthz", nil, http.StatusOK},
		{"header: missing", headerOpts, "GET", "/", nil, http.StatusUnauthorized},
		{"header: viewer reads", headerOpts, "GET", "/api/servers", []string{"X-Forwarded-Email", "vic@example.com"}, http.StatusOK},
		{"header: viewer cannot deploy", headerOpts, "POST", "/api/deploy", []string{"X-Forwarded-Email", "vic@example.com"}, http.StatusForbidden},
		{"header: admin deploys", headerOpts, "POST", "/api/deploy", []string{"X-Forwarded-Email", "alice@example.com"}, http.StatusOK},
		{"header: IAP prefix", headerOpts, "POST", "/api/deploy", []string{"X-Forwarded-Email", "accounts.google.com:alice@example.com"}, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := f.server(tt.opts)
			var body *strings.Reader
			if tt.method != "GET" {
				body = strings.NewReader(deploy)
			} else {
				body = strings.NewReader("")
			}
			before := len(f.audit("web-1"))
			w := do(t, s, tt.method, tt.target, body, tt.hdr...)
			wantCode(t, w, tt.code)
			if tt.code == http.StatusUnauthorized && strings.HasPrefix(tt.name, "htpasswd") && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", w.Header().Get("WWW-Authenticate"))
			}
			wrote := len(f.audit("web-1")) > before
			if wrote != (tt.method == "POST" && tt.code == http.StatusOK) {
				t.Errorf("wrote=%v", wrote)
			}
			if tt.code == http.StatusOK && tt.method == "POST" {
				if recs := f.audit("web-1"); !strings.HasPrefix(recs[0].User, "alice") || strings.Contains(recs[0].User, "accounts.google.com") {
					t.Errorf("audited as %q", recs[0].User)
				}
				f.setManifest("web-1", f.h2, f.a1) // undo, for the next case
			}
		})
	}

	t.Run("viewers see no forms", func(t *testing.T) {
		s := f.server(headerOpts)
		page := func(user string) string {
			w := do(t, s, http.MethodGet, "/servers/web-1/apps/hello", nil, "X-Forwarded-Email", user)
			wantCode(t, w, http.StatusOK)
			return w.Body.String()
		}
		viewer, admin := parseHTML(t, []byte(page("vic@example.com"))), parseHTML(t, []byte(page("alice@example.com")))
		if n := len(queryAll(t, viewer, "form[method=post]")); n != 0 {
			t.Errorf("viewer sees %d write forms", n)
		}
		if n := len(queryAll(t, admin, "form[method=post]")); n < 4 {
			t.Errorf("admin sees %d write forms", n)
		}
		if got := text(query(t, viewer, "header.top .who")); got != "vic@example.com · viewer" {
			t.Errorf("who %q", got)
		}
	})
}

func htpasswdOpts(ht *auth.Htpasswd) func(*Options) {
	return func(o *Options) {
		o.Htpasswd = ht
		o.Admins = []string{"alice"}
	}
}

func headerOpts(o *Options) {
	o.AuthHeader = "X-Forwarded-Email"
	o.Admins = []string{"alice@example.com"}
}

// TestCrossOrigin checks that state-changing requests from other origins
// are refused before they reach a handler, and same-origin ones pass.
func TestCrossOrigin(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	_, v := f.manifest("web-1")
	form := url.Values{"package": {f.h3.String()}, "version": {string(v)}}.Encode()
	tests := []struct {
		name   string
		target string
		body   string
		hdr    []string
		code   int
	}{
		{"form from another site", "/servers/web-1/apps/hello/deploy", form, []string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"form from a sibling subdomain", "/servers/web-1/apps/hello/deploy", form, []string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-site"}, http.StatusForbidden},
		{"old browser, foreign Origin", "/servers/web-1/apps/hello/deploy", form, []string{"Content-Type", "application/x-www-form-urlencoded", "Origin", "https://evil.example"}, http.StatusForbidden},
		{"API from another site", "/api/deploy", `{"package": "` + f.h3.String() + `", "servers": ["web-1"]}`, []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"refresh from another site", "/refresh", "", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"same origin", "/servers/web-1/apps/hello/deploy", form, []string{"Content-Type", "application/x-www-form-urlencoded", "Sec-Fetch-Site", "same-origin"}, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.snapshot()
			w := do(t, s, http.MethodPost, tt.target, strings.NewReader(tt.body), tt.hdr...)
			wantCode(t, w, tt.code)
			if changed := f.snapshot() != before; changed != (tt.code == http.StatusSeeOther) {
				t.Errorf("bucket changed: %v", changed)
			}
			if tt.code == http.StatusForbidden && strings.HasPrefix(tt.target, "/api/") {
				if e := decode[apiErr](t, w); !strings.Contains(e.Error, "cross-origin") {
					t.Errorf("error %q", e.Error)
				}
			}
		})
	}
	// A script (no browser headers) may POST.
	w := do(t, s, http.MethodPost, "/api/deploy", strings.NewReader(`{"package": "`+f.h1.String()+`", "servers": ["web-2"]}`))
	wantCode(t, w, http.StatusOK)
}

// TestAPIDoc checks the API reference: GET /api lists every route the mux
// serves from the same table, with an example for each, and every route
// it lists reaches a handler (not the catch-all 404).
func TestAPIDoc(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	doc := getPage(t, s, "/api")
	listed := attrs(t, doc, "table.api-routes tr[id]", "id")
	routes := s.api.Routes()
	if len(listed) != len(routes) || len(routes) < 18 {
		t.Fatalf("the reference lists %d routes, the table has %d", len(listed), len(routes))
	}
	fill := strings.NewReplacer("{server}", "web-1", "{group}", "web", "{app}", "hello", "{env}", "hello", "{id}", "20200101t000000-000000", "{cmd}", "pause")
	for i, rt := range routes {
		if listed[i] != rt.Method+" "+rt.Path {
			t.Errorf("row %d is %q, want %s %s", i, listed[i], rt.Method, rt.Path)
		}
		if rt.What == "" || rt.Answers == "" || !strings.Contains(rt.Example, "curl") {
			t.Errorf("%s %s: undocumented", rt.Method, rt.Path)
		}
		w := do(t, s, rt.Method, fill.Replace(rt.Path), strings.NewReader("{}"), "Content-Type", "application/json")
		if strings.Contains(w.Body.String(), "no such API endpoint") {
			t.Errorf("%s %s: not served", rt.Method, rt.Path)
		}
	}
	if got := attr(query(t, getPage(t, s, "/"), `header nav a[href="/api"]`), "href"); got != "/api" {
		t.Error("the API link does not lead to the reference")
	}
}
