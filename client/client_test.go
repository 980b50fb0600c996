package client_test

import (
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/client"
	"github.com/pushpull/pushpull/internal/pushui"
	"github.com/pushpull/pushpull/internal/pushui/auth"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/manifest"
	"golang.org/x/oauth2"
)

// world is a real pushui over a file:// bucket whose group web has two
// members serving h1, and h2 released beside it.
type world struct {
	url    string
	store  *blobstore.Store
	h1, h2 manifest.PackageName
}

func newWorld(t *testing.T, opts pushui.Options) *world {
	t.Helper()
	ctx := t.Context()
	store, err := blobstore.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	w := &world{store: store}
	w.h1 = deploytest.Build(t, store, "hello", 1, map[string]string{"hello": "v1"})
	w.h2 = deploytest.Build(t, store, "hello", 2, map[string]string{"hello": "v2"})
	if _, err := store.UpdateManifest(ctx, manifest.Group("web"), blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{{Package: w.h1}}})); err != nil {
		t.Fatal(err)
	}
	for _, host := range []string{"web-1", "web-2"} {
		st := &manifest.Status{Server: host, Time: time.Now().UTC(), Groups: []manifest.GroupStatus{{Name: "web", Revision: 1}},
			Envs: []manifest.EnvStatus{{Env: "hello", App: "hello", State: manifest.StateServing, Serving: w.h1.String(), Desired: w.h1.String(), Output: "started " + host}}}
		if err := store.WriteStatus(ctx, st); err != nil {
			t.Fatal(err)
		}
	}
	opts.Store, opts.Logger = store, slog.New(slog.DiscardHandler)
	opts.Config = &manifest.PushConfig{Groups: map[string][]string{"web": {"hello"}}, Servers: map[string][]string{"web-1": {"hello"}}}
	srv, err := pushui.New(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	w.url = hs.URL
	return w
}

func (w *world) client(t *testing.T, a client.Auth) *client.Client {
	t.Helper()
	c, err := client.New(w.url, client.Options{Auth: a})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRollouts drives a rollout through the client against a real pushui:
// start, read, a long poll ended by a command of another client, the
// list, and the errors each refusal maps to.
func TestRollouts(t *testing.T) {
	w := newWorld(t, pushui.Options{})
	c, other := w.client(t, nil), w.client(t, nil)
	ctx := t.Context()

	rec, err := c.StartRollout(ctx, client.RolloutStart{Group: "web", Package: w.h2, Set: map[string]any{"canary": 1, "auto_revert": true}})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Strategy.Canary != 1 || !rec.Strategy.AutoRevert || rec.Previous != w.h1 {
		t.Errorf("started %+v", rec.Strategy)
	}
	_, err = c.StartRollout(ctx, client.RolloutStart{Group: "web", Package: w.h2})
	if !errors.Is(err, client.ErrConflict) {
		t.Errorf("a second start: %v, want ErrConflict", err)
	}
	var apiErr *client.Error
	if !errors.As(err, &apiErr) || apiErr.Status != 409 || apiErr.Message == "" {
		t.Errorf("a second start: %#v, want an *Error with status 409 and pushui's message", err)
	}
	if _, err := c.StartRollout(ctx, client.RolloutStart{Group: "nope", Package: w.h2}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("an unknown group: %v, want ErrNotFound", err)
	}
	if _, err := c.StartRollout(ctx, client.RolloutStart{Group: "web", Package: w.h2, Set: map[string]any{"steps": []int{50}}}); !errors.Is(err, client.ErrBadRequest) && !errors.Is(err, client.ErrConflict) {
		t.Errorf("a bad strategy: %v, want ErrBadRequest (or the active rollout's conflict)", err)
	}

	got, err := c.GetRollout(ctx, rec.ID)
	if err != nil || got.ID != rec.ID || got.ETag == "" {
		t.Fatalf("GetRollout = %+v, %v", got, err)
	}
	done := make(chan *client.Rollout)
	go func() {
		r, err := c.WaitRollout(ctx, rec.ID, got.ETag, time.Minute)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	if _, err := other.RolloutCommand(ctx, rec.ID, "pause"); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r == nil || r.State != manifest.RolloutPaused || r.ETag == got.ETag {
		t.Errorf("the long poll answered %+v, want the paused record with a new ETag", r)
	}
	if _, err := c.RolloutCommand(ctx, rec.ID, "pause"); !errors.Is(err, client.ErrConflict) {
		t.Errorf("pausing a paused rollout: %v, want ErrConflict", err)
	}
	list, err := c.Rollouts(ctx, "web", 0)
	if err != nil || !slices.ContainsFunc(list, func(r *manifest.RolloutRecord) bool { return r.ID == rec.ID }) {
		t.Errorf("Rollouts = %v, %v; want %s listed", list, err, rec.ID)
	}
	if _, err := c.GetRollout(ctx, "20200101t000000-000000"); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("an unknown rollout: %v, want ErrNotFound", err)
	}
	st, err := c.Status(ctx, "web-1")
	if err != nil || st.Envs[0].Output != "started web-1" {
		t.Errorf("Status = %+v, %v", st, err)
	}
}

// TestDeploy checks the deploy through the client: what changed, and a
// refusal of the push config as ErrBadRequest.
func TestDeploy(t *testing.T) {
	w := newWorld(t, pushui.Options{})
	c := w.client(t, nil)
	out, err := c.Deploy(t.Context(), client.DeployRequest{Package: w.h2.String(), Group: "web"})
	if err != nil || out.Package != w.h2.String() || len(out.Results) != 1 || !out.Results[0].Changed || out.Results[0].Group != "web" {
		t.Fatalf("Deploy = %+v, %v", out, err)
	}
	m, _, _ := w.store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, _ := m.Lookup("hello"); e.Package != w.h2 {
		t.Errorf("group entry %s, want %s", e.Package, w.h2)
	}
	if _, err := c.Deploy(t.Context(), client.DeployRequest{Package: w.h2.String(), Servers: []string{"db-9"}}); !errors.Is(err, client.ErrBadRequest) {
		t.Errorf("an unknown server: %v, want ErrBadRequest", err)
	}
}

// TestAuth checks the credentials against a pushui with -htpasswd: from
// the environment, from a netrc file as curl reads it, and refusals as
// ErrUnauthorized (no or wrong credentials) and ErrForbidden (not an
// admin).
func TestAuth(t *testing.T) {
	alice, err := auth.HtpasswdLine("alice", []byte("wonderland"))
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := auth.HtpasswdLine("bob", []byte("builder"))
	ht, err := auth.ParseHtpasswd([]byte(alice + "\n" + bob + "\n"))
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, pushui.Options{Htpasswd: ht, Admins: []string{"alice"}})
	ctx := t.Context()
	netrc := filepath.Join(t.TempDir(), "netrc")
	if err := os.WriteFile(netrc, []byte("machine 127.0.0.1 login alice password wonderland\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name string
		env  func(string) string
		want error
	}{
		{"netrc", env(client.EnvNetrc, netrc), nil},
		{"environment", env(client.EnvUser, "alice", client.EnvPassword, "wonderland"), nil},
		{"wrong password", env(client.EnvUser, "alice", client.EnvPassword, "guess"), client.ErrUnauthorized},
		{"none", env(client.EnvNetrc, filepath.Join(t.TempDir(), "absent")), client.ErrUnauthorized},
		{"not an admin", env(client.EnvUser, "bob", client.EnvPassword, "builder"), client.ErrForbidden},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, err := client.FromEnvironment(ctx, w.url, tc.env)
			if err != nil {
				if errors.Is(err, client.ErrNoCredentials) && tc.want == client.ErrUnauthorized {
					return // the missing netrc named is refused before any request
				}
				t.Fatal(err)
			}
			_, err = w.client(t, a).Deploy(ctx, client.DeployRequest{Package: w.h2.String(), Group: "web"})
			if !errors.Is(err, tc.want) && (tc.want != nil || err != nil) {
				t.Errorf("deploy: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := client.FromEnvironment(ctx, w.url, env(client.EnvUser, "alice")); !errors.Is(err, client.ErrNoCredentials) {
		t.Errorf("a user without a password: %v, want ErrNoCredentials", err)
	}
}

// TestManifests checks a read-modify-write of a group's manifest through
// the client: the ETag of the read guards the write, and a stale one is
// ErrPrecondition with nothing written.
func TestManifests(t *testing.T) {
	w := newWorld(t, pushui.Options{})
	c := w.client(t, nil)
	ctx := t.Context()
	m, etag, err := c.GroupManifest(ctx, "web")
	if err != nil || etag == "" || len(m.Packages) != 1 {
		t.Fatalf("GroupManifest = %+v, %q, %v", m, etag, err)
	}
	m.SetPackage(w.h2)
	written, err := c.PutGroupManifest(ctx, "web", m, etag)
	if err != nil || written.ETag == "" || written.ETag == etag || written.Manifest.Revision <= m.Revision-1 {
		t.Fatalf("PutGroupManifest = %+v, %v", written, err)
	}
	m.SetPackage(w.h1)
	if _, err := c.PutGroupManifest(ctx, "web", m, etag); !errors.Is(err, client.ErrPrecondition) {
		t.Errorf("a PUT at the old ETag: %v, want ErrPrecondition", err)
	}
	cur, _, _ := w.store.ReadManifest(ctx, manifest.Group("web"))
	if e, _ := cur.Lookup("hello"); e.Package != w.h2 {
		t.Errorf("the group's entry is %s, want %s: the stale PUT wrote", e.Package, w.h2)
	}
	if _, err := c.PutServerManifest(ctx, "web-1", &manifest.Manifest{}, ""); err != nil {
		t.Errorf("creating web-1's manifest: %v", err)
	}
	if _, err := c.PutServerManifest(ctx, "web-1", &manifest.Manifest{}, ""); !errors.Is(err, client.ErrPrecondition) {
		t.Errorf("creating it again: %v, want ErrPrecondition", err)
	}
}

// TestBearer checks that Bearer credentials send their source's token,
// as IAP's ID tokens are sent.
func TestBearer(t *testing.T) {
	got := make(chan string, 1)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("Authorization")
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"generation": "1"}`))
	}))
	defer hs.Close()
	c, err := client.New(hs.URL, client.Options{Auth: client.Bearer{Source: oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "id-token"})}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Live(t.Context()); err != nil {
		t.Fatal(err)
	}
	if h := <-got; h != "Bearer id-token" {
		t.Errorf("Authorization: %q, want Bearer id-token", h)
	}
}
