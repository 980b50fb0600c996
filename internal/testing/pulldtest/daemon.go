package pulldtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// FreeAddr returns a 127.0.0.1 address whose port was free a moment ago,
// for a pulld's -listen.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Client talks to one pulld's HTTP endpoints.
type Client struct {
	Base string // http://host:port
}

var client = &http.Client{Timeout: 5 * time.Second}

// Health is /healthz's answer.
type Health struct {
	OK      bool            `json:"ok"`
	Sources map[string]bool `json:"sources"`
}

// Health returns /healthz's answer, or an error when pulld does not answer.
func (c Client) Health() (Health, error) {
	var h Health
	resp, err := client.Get(c.Base + "/healthz")
	if err != nil {
		return h, err
	}
	defer resp.Body.Close()
	err = json.NewDecoder(resp.Body).Decode(&h)
	return h, err
}

// WaitReady waits up to 30 s until pulld answers /healthz with every one
// of sources established, and fails the test otherwise.
func (c Client) WaitReady(t testing.TB, sources ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		h, err := c.Health()
		ready := err == nil && h.OK
		for _, s := range sources {
			ready = ready && h.Sources[s]
		}
		if ready {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pulld at %s not ready with %v after 30s: %+v, %v", c.Base, sources, h, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Status returns GET /status.
func (c Client) Status(t testing.TB) *manifest.Status {
	t.Helper()
	resp, err := client.Get(c.Base + "/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	st, err := manifest.ParseStatus(body)
	if err != nil {
		t.Fatalf("GET /status: %v\n%s", err, body)
	}
	return st
}

// Nudge sends POST /nudge.
func (c Client) Nudge(t testing.TB) {
	t.Helper()
	resp, err := client.Post(c.Base+"/nudge", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /nudge: %s", resp.Status)
	}
}

// WaitStatus polls fetch until ok accepts its answer, for up to d, and
// fails the test with the last answer otherwise.
func WaitStatus(t testing.TB, d time.Duration, fetch func() (*manifest.Status, error), ok func(*manifest.Status) bool) *manifest.Status {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		st, err := fetch()
		if err == nil && ok(st) {
			return st
		}
		if time.Now().After(deadline) {
			if st != nil {
				t.Fatalf("status not as wanted after %v (err %v):\n%s", d, err, st.Marshal())
			}
			t.Fatalf("status not as wanted after %v: %v", d, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// EnvIs returns a status check: env is in state serving pkg ("" for none).
func EnvIs(env string, state manifest.State, pkg string) func(*manifest.Status) bool {
	return func(st *manifest.Status) bool {
		es, ok := st.Lookup(env)
		return ok && es.State == state && es.Serving == pkg
	}
}

// SetManifest points server's manifest at entries (conditional update).
func SetManifest(t testing.TB, store *blobstore.Store, server string, entries ...manifest.Entry) {
	t.Helper()
	SetDocument(t, store, manifest.Server(server), entries...)
}

// SetDocument sets the entries of target's manifest, a server's or a
// group's (conditional update); no entries writes an explicit empty one.
func SetDocument(t testing.TB, store *blobstore.Store, target manifest.Target, entries ...manifest.Entry) {
	t.Helper()
	if entries == nil {
		entries = []manifest.Entry{}
	}
	if _, err := store.UpdateManifest(t.Context(), target, func(m *manifest.Manifest, _ bool) error {
		m.Packages = entries
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// Current returns the build id env's current symlink points at under
// root, "" when there is none.
func Current(t testing.TB, root, env string) string {
	t.Helper()
	target, err := os.Readlink(filepath.Join(root, "envs", env, "current"))
	if os.IsNotExist(err) {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Base(target)
}

// CurrentFile returns the content of name in env's current build.
func CurrentFile(t testing.TB, root, env, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(root, "envs", env, "current", name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(data))
}

// Describe formats a status's envs on one line, for messages.
func Describe(st *manifest.Status) string {
	var parts []string
	for _, e := range st.Envs {
		parts = append(parts, fmt.Sprintf("%s=%s(%s)%s", e.Env, e.State, e.Serving, e.Error))
	}
	return strings.Join(parts, " ")
}
