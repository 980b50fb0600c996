package pushui

import (
	"context"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/manifest"
)

// TestPushConfigInTheBucket: the push config lives in the bucket. The
// first pushui writes its -config there; GET/PUT /api/config edit it with
// ETag and If-Match and an audit record; a second replica over the same
// bucket obeys the change without a restart, and so does a hand edit of
// config/push.json.
func TestPushConfigInTheBucket(t *testing.T) {
	f := newFixture(t)
	a, b := f.server(), f.server()
	if c, _, err := f.store.ReadPushConfig(t.Context()); err != nil || c == nil || string(c.Marshal()) != string(f.conf.Marshal()) {
		t.Fatalf("bucket config after start = %v, %v; want -config's", c, err)
	}

	w := do(t, a, http.MethodGet, "/api/config", nil)
	wantCode(t, w, http.StatusOK)
	etag := w.Header().Get("ETag")
	put := func(body string, hdr ...string) int {
		return do(t, a, http.MethodPut, "/api/config", strings.NewReader(body), hdr...).Code
	}
	noAPI := `{"servers": {"web-1": ["hello"], "web-2": ["hello", "api"], "db-1": ["hello"]}, "groups": {"web": ["hello"]}}`
	for _, tt := range []struct {
		name, body string
		hdr        []string
		code       int
	}{
		{"no If-Match", noAPI, nil, http.StatusPreconditionRequired},
		{"stale If-Match", noAPI, []string{"If-Match", `"0000"`}, http.StatusPreconditionFailed},
		{"null", `null`, []string{"If-Match", etag}, http.StatusBadRequest},
		{"empty object", `{}`, []string{"If-Match", etag}, http.StatusBadRequest},
		{"servers null", `{"servers": null}`, []string{"If-Match", etag}, http.StatusBadRequest},
		{"duplicate key", `{"servers": {}, "servers": {}}`, []string{"If-Match", etag}, http.StatusBadRequest},
		{"group listing a server (the old meaning)", `{"servers": {"web-1": []}, "groups": {"g": ["web-1"]}}`, []string{"If-Match", etag}, http.StatusBadRequest},
		{"bad app in a group", `{"servers": {}, "groups": {"g": ["Bad App"]}}`, []string{"If-Match", etag}, http.StatusBadRequest},
	} {
		if code := put(tt.body, tt.hdr...); code != tt.code {
			t.Errorf("%s: PUT /api/config = %d, want %d", tt.name, code, tt.code)
		}
	}
	if code := put(noAPI, "If-Match", etag); code != http.StatusOK {
		t.Fatalf("PUT /api/config = %d", code)
	}
	recs, err := f.store.ListConfigAudit(t.Context(), 10)
	if err != nil || len(recs) < 2 || recs[0].User != auth.LocalUser {
		t.Fatalf("config audit = %v, %v", recs, err)
	}

	// Replica b was started before the change: it obeys the new config.
	deploy := `{"package": "` + f.a2.String() + `", "servers": ["web-1"]}`
	w = do(t, b, http.MethodPost, "/api/deploy", strings.NewReader(deploy))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "not allowed on server web-1") {
		t.Fatalf("replica deploy after the config dropped api from web-1: %d %s", w.Code, w.Body)
	}
	// A hand edit of config/push.json is obeyed too.
	if err := f.store.Put(t.Context(), blobstore.PushConfigKey, f.conf.Marshal()); err != nil {
		t.Fatal(err)
	}
	w = do(t, b, http.MethodPost, "/api/deploy", strings.NewReader(deploy))
	wantCode(t, w, http.StatusOK)
}

// TestBootstrapConfig: with no config in the bucket and none given, New
// fails naming the key; a -config different from the bucket's is only
// warned about, and the bucket's is kept.
func TestBootstrapConfig(t *testing.T) {
	f := emptyFixture(t)
	_, err := New(context.Background(), Options{Store: f.store, Logger: slog.New(slog.DiscardHandler)})
	if err == nil || !strings.Contains(err.Error(), "no push config in the bucket (config/push.json)") {
		t.Fatalf("New without any config: %v", err)
	}
	bucketConf := &manifest.PushConfig{Servers: map[string][]string{"web-1": {"hello"}}}
	if _, err := f.store.WritePushConfig(t.Context(), bucketConf, ""); err != nil {
		t.Fatal(err)
	}
	f.conf = &manifest.PushConfig{Servers: map[string][]string{"other": {"hello"}}}
	s := f.server()
	if _, ok := s.svc.Conf().Servers["web-1"]; !ok {
		t.Fatalf("pushui uses %v, want the bucket's config", s.svc.Conf())
	}
	if !strings.Contains(f.logs.String(), "the bucket holds a different push config") {
		t.Fatalf("no warning about the different -config:\n%s", f.logs.String())
	}
}

// TestAPIEditsHandWrittenManifest: a manifest written into the file://
// bucket by hand (no sidecar) is served with an ETag, and a PUT with that
// ETag in If-Match replaces it; a second hand edit makes the old ETag
// stale.
func TestAPIEditsHandWrittenManifest(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	path := filepath.Join(f.dir, "servers", "db-1.json")
	if err := os.WriteFile(path, []byte(`{"packages": ["`+f.h1.String()+`"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	w := do(t, s, http.MethodGet, "/api/servers/db-1", nil)
	wantCode(t, w, http.StatusOK)
	etag := w.Header().Get("ETag")
	body := `{"packages": ["` + f.h2.String() + `"]}`
	w = do(t, s, http.MethodPut, "/api/servers/db-1", strings.NewReader(body), "If-Match", etag)
	wantCode(t, w, http.StatusOK)
	if got := f.desired("db-1", "hello"); got != f.h2.String() {
		t.Fatalf("db-1 hello = %s, want %s", got, f.h2)
	}
	etag = w.Header().Get("ETag")
	if err := os.WriteFile(path, []byte(`{"packages": ["`+f.h3.String()+`"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	w = do(t, s, http.MethodPut, "/api/servers/db-1", strings.NewReader(body), "If-Match", etag)
	wantCode(t, w, http.StatusPreconditionFailed)
	if got := f.desired("db-1", "hello"); got != f.h3.String() {
		t.Fatalf("the PUT with a stale ETag overwrote the hand edit: hello = %s", got)
	}
}

// TestConfigPage: the /config page shows the bucket's push config in a
// form; an admin's save with the page's version is written (and audited),
// a save based on an older version is refused with the current config
// shown, and one that does not parse is refused naming the problem.
func TestConfigPage(t *testing.T) {
	f := newFixture(t)
	s := f.server()
	doc := getPage(t, s, "/config")
	version := attr(query(t, doc, `input[name="version"]`), "value")
	if !strings.Contains(text(query(t, doc, "textarea")), `"web-1"`) || version == "" {
		t.Fatalf("config page: version %q, textarea %q", version, text(query(t, doc, "textarea")))
	}
	next := `{"servers": {"web-1": ["hello"]}}`
	w := postForm(t, s, "/config", url.Values{"version": {version}, "config": {next}})
	wantCode(t, w, http.StatusSeeOther)
	if c, _, _ := f.store.ReadPushConfig(t.Context()); c == nil || len(c.Servers) != 1 {
		t.Fatalf("config after the save: %v", c)
	}
	if recs, _ := f.store.ListConfigAudit(t.Context(), 10); len(recs) < 2 || recs[0].User != auth.LocalUser {
		t.Fatalf("config audit: %v", recs)
	}
	w = postForm(t, s, "/config", url.Values{"version": {version}, "config": {`{"servers": {}}`}})
	wantCode(t, w, http.StatusPreconditionFailed)
	if !strings.Contains(w.Body.String(), "changed since this page was loaded") {
		t.Errorf("stale save: %s", truncate(w.Body.String(), 500))
	}
	doc = getPage(t, s, "/config")
	w = postForm(t, s, "/config", url.Values{"version": {attr(query(t, doc, `input[name="version"]`), "value")}, "config": {`{"servers": {}, "servers": {}}`}})
	wantCode(t, w, http.StatusBadRequest)
	if !strings.Contains(w.Body.String(), "duplicate key") {
		t.Errorf("invalid save: %s", truncate(w.Body.String(), 500))
	}
}
