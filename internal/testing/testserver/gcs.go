package testserver

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// GCS is a running fake-gcs-server speaking the GCS JSON API over plain HTTP,
// with its filesystem backend in a temporary directory.
type GCS struct {
	// Host is the server's address, host:port with no scheme: the value of
	// STORAGE_EMULATOR_HOST. It stays the same across Stop and Restart.
	Host string
	// Dir is the server's filesystem root.
	Dir string

	srv *server
}

// StartGCS starts a fake-gcs-server and returns once it answers. It is
// stopped when the test ends. A missing binary or a server that does not
// come up fails the test.
func StartGCS(t testing.TB) *GCS {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "gcs")
	args := func(proxyAddr string, port int) []string {
		return []string{
			"-scheme", "http",
			"-host", "127.0.0.1",
			"-port", strconv.Itoa(port),
			"-backend", "filesystem",
			"-filesystem-root", dir,
			// Requests whose Host is not exactly the public host are
			// routed as if addressed to a bucket host, so every read
			// would be NotFound: it must be the address clients use.
			"-public-host", proxyAddr,
			// Resumable-upload Location headers point here.
			"-external-url", "http://" + proxyAddr,
		}
	}
	srv := startServer(t, "fake-gcs-server", args, answers("/storage/v1/b", http.StatusOK), "FAKE_GCS_")
	return &GCS{Host: srv.proxy.addr, Dir: dir, srv: srv}
}

// Bucket creates a bucket named name through the JSON API and returns its
// gocloud URL, "gs://name". Opening that URL needs STORAGE_EMULATOR_HOST
// (see Setenv and Env). An empty name picks a fresh one (bucket-1,
// bucket-2, …). Creating a bucket that exists fails the test.
func (g *GCS) Bucket(t testing.TB, name string) string {
	t.Helper()
	if name == "" {
		name = g.srv.freshName()
	}
	body, err := json.Marshal(map[string]string{"name": name})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost,
		"http://"+g.Host+"/storage/v1/b?project=test", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := probeClient.Do(req)
	if err != nil {
		t.Fatalf("testserver: create GCS bucket %q: %v", name, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("testserver: create GCS bucket %q: %s: %s", name, resp.Status, msg)
	}
	return "gs://" + name
}

// Env returns the environment a process needs to reach this server through
// gocloud's gs:// URLs: STORAGE_EMULATOR_HOST=Host. Append it to
// os.Environ() for a child process.
func (g *GCS) Env() []string {
	return []string{"STORAGE_EMULATOR_HOST=" + g.Host}
}

// Setenv sets Env in the test process with t.Setenv, so it is undone when
// the test ends. Tests that call it cannot be parallel.
func (g *GCS) Setenv(t testing.TB) {
	t.Helper()
	setenv(t, g.Env())
}

// BytesSent returns how many bytes the server has sent to clients so far,
// counting HTTP headers and bodies.
func (g *GCS) BytesSent() int64 { return g.srv.proxy.sent.Load() }

// Stop kills the server (SIGKILL) and drops every connection to it; until
// Restart, connections to Host are refused. The data directory is kept.
// Stop is idempotent and safe to call from any goroutine.
func (g *GCS) Stop() { g.srv.stop() }

// Restart stops the server if it runs and starts it again on the same Host
// with the same data, returning once it answers.
func (g *GCS) Restart(t testing.TB) {
	t.Helper()
	g.srv.restart(t)
}

// setenv applies KEY=VALUE pairs with t.Setenv.
func setenv(t testing.TB, env []string) {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
}
