package release

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"gocloud.dev/pubsub"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/fleet"
	"github.com/pushpull/pushpull/internal/nudge"
	"github.com/pushpull/pushpull/internal/testing/computetest"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/manifest"
)

// TestDeploy checks -deploy: each server's manifest points the app at the
// new package, keeping the entry's env and config and every other entry;
// a manifest that does not parse is refused and left as it is; changes are
// audited and the changed servers nudged.
func TestDeploy(t *testing.T) {
	bucket := "file://" + t.TempDir()
	store := openStore(t, bucket)
	old := "hello/hello-20261101T000000Z-aaaaaaaaaaaa.tar.zst"
	const web1 = `{"revision": 7, "packages": [
		"api/api-20261121T080000Z-89abcdef0123.tar.zst",
		{"package": "` + "hello/hello-20261101T000000Z-aaaaaaaaaaaa.tar.zst" + `", "env": "hello-canary", "config": {"LOG_LEVEL": "debug"}, "on_failure": "continue"}
	]}`
	if err := store.Put(t.Context(), "servers/web-1.json", []byte(web1)); err != nil {
		t.Fatal(err)
	}
	const broken = `{"revision": 3, "packages": ["not a package"]}`
	if err := store.Put(t.Context(), "servers/broken.json", []byte(broken)); err != nil {
		t.Fatal(err)
	}
	if err := store.Put(t.Context(), "config/push.json", []byte(`{"servers": {"web-1": ["hello", "api"], "web-2": ["hello"], "broken": ["hello"]}}`)); err != nil {
		t.Fatal(err)
	}

	var mu sync.Mutex
	var nudged []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		nudged = append(nudged, string(body))
		mu.Unlock()
	}))
	defer srv.Close()

	cfg := testConfig(bucket, "hello", appTree(t))
	cfg.Deploy = []string{"web-1", "broken", "web-2"}
	cfg.Nudge.URL = srv.URL + "/nudge/{server}"
	var out strings.Builder
	cfg.Out = &out
	res, err := Run(t.Context(), cfg)
	if !errors.Is(err, ErrDeploy) || !strings.Contains(err.Error(), "server broken") {
		t.Fatalf("Run = %v, want ErrDeploy naming broken", err)
	}
	if !errors.Is(err, manifest.ErrInvalidManifest) {
		t.Errorf("error does not wrap ErrInvalidManifest: %v", err)
	}
	if out.String() != res.Name.String()+"\n" || res.Name.IsZero() {
		t.Errorf("stdout %q, want the package name even when a deploy failed", out.String())
	}
	if !slices.Equal(res.Deployed, []manifest.Target{manifest.Server("web-1"), manifest.Server("web-2")}) {
		t.Errorf("Deployed = %v", res.Deployed)
	}

	m, _, err := store.ReadManifest(t.Context(), manifest.Server("web-1"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Revision != 8 || len(m.Packages) != 2 {
		t.Fatalf("web-1: %s", m.Marshal())
	}
	if e := m.Packages[0]; e.Package.String() != "api/api-20261121T080000Z-89abcdef0123.tar.zst" {
		t.Errorf("web-1: api entry changed: %+v", e)
	}
	if e := m.Packages[1]; e.Package != res.Name || e.Env != "hello-canary" || e.Config["LOG_LEVEL"] != "debug" || e.OnFailure != manifest.PolicyContinue {
		t.Errorf("web-1: hello entry %+v, want %s with env, config and policy kept", e, res.Name)
	}
	m, _, err = store.ReadManifest(t.Context(), manifest.Server("web-2"))
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Packages) != 1 || m.Packages[0].Package != res.Name {
		t.Errorf("web-2: %s", m.Marshal())
	}
	data, _, err := store.Read(t.Context(), "servers/broken.json")
	if err != nil || string(data) != broken {
		t.Errorf("broken manifest changed: %q, %v", data, err)
	}

	for _, server := range []string{"web-1", "web-2"} {
		recs, err := store.ListAudit(t.Context(), manifest.Server(server), 10)
		if err != nil || len(recs) != 1 || recs[0].User != "alice" || !strings.Contains(recs[0].Action, res.Name.String()) {
			t.Errorf("audit of %s: %v, %v", server, recs, err)
			continue
		}
		if server == "web-1" && (recs[0].Before == nil || recs[0].Before.Packages[1].Package.String() != old) {
			t.Errorf("audit of web-1: before = %+v", recs[0].Before)
		}
	}
	mu.Lock()
	slices.Sort(nudged)
	if !slices.Equal(nudged, []string{"web-1", "web-2"}) {
		t.Errorf("nudged %v, want web-1 and web-2", nudged)
	}
	mu.Unlock()

	// Deploying the same package again changes nothing and nudges no one.
	before := len(nudged)
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := deploy(t.Context(), store, &cfg, &prepared{meta: res.Meta}, res.Name); !errors.Is(err, ErrDeploy) {
		t.Errorf("second deploy: %v", err)
	}
	if m, _, _ := store.ReadManifest(t.Context(), manifest.Server("web-1")); m.Revision != 8 {
		t.Errorf("unchanged deploy wrote web-1: revision %d", m.Revision)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(nudged) != before {
		t.Errorf("unchanged deploy nudged %v", nudged[before:])
	}
}

// TestDeployNudgeGCE checks -deploy with the GCE form of nudges: the
// instance of every server whose manifest changed gets a new pushrev, its
// other metadata items kept; a server whose manifest did not change, and an
// instance of a server not deployed to, are left alone. A server with no
// instance fails its nudge, which release only logs.
func TestDeployNudgeGCE(t *testing.T) {
	cs := computetest.Start(t)
	inst := func(name string) computetest.Instance {
		return computetest.Instance{Project: "my-project", Zone: "us-central1-a", Name: name}
	}
	for _, s := range []string{"web-1", "web-2", "web-3"} {
		cs.Add(inst(s), map[string]string{"startup-script": "true", nudge.PushrevKey: "before"})
	}
	bucket := "file://" + t.TempDir()
	if err := openStore(t, bucket).Put(t.Context(), "config/push.json", []byte(`{"servers": {"web-1": ["hello"], "web-2": ["hello"], "web-9": ["hello"]}}`)); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	cfg := testConfig(bucket, "hello", appTree(t))
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	cfg.Deploy = []string{"web-1", "web-2", "web-9"}
	cfg.Nudge = nudge.Config{GCE: "my-project/us-central1-a", GCEEndpoint: cs.Endpoint}
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Run: %v (a failed nudge must not fail the release)", err)
	}
	if !slices.Equal(res.Deployed, []manifest.Target{manifest.Server("web-1"), manifest.Server("web-2"), manifest.Server("web-9")}) {
		t.Fatalf("Deployed = %v", res.Deployed)
	}
	revs := map[string]string{}
	for _, s := range []string{"web-1", "web-2", "web-3"} {
		items, _ := cs.Items(inst(s))
		revs[s] = items[nudge.PushrevKey]
		if items["startup-script"] != "true" {
			t.Errorf("%s: items %q, startup-script not kept", s, items)
		}
	}
	if revs["web-1"] == "before" || revs["web-2"] == "before" || revs["web-1"] == revs["web-2"] {
		t.Errorf("pushrev of the deployed servers %q, want a new value each", revs)
	}
	if revs["web-3"] != "before" {
		t.Errorf("web-3 was not deployed to but its pushrev is %q", revs["web-3"])
	}
	if !strings.Contains(logs.String(), "nudge failed") || !strings.Contains(logs.String(), "server=web-9") {
		t.Errorf("the failed nudge of web-9 is not logged:\n%s", logs.String())
	}

	// The same package again changes no manifest and nudges no one.
	cfg.Deploy = []string{"web-1"}
	if _, err := deploy(t.Context(), openStore(t, bucket), &cfg, &prepared{meta: res.Meta, nudger: mustNudger(t, &cfg)}, res.Name); err != nil {
		t.Fatal(err)
	}
	if items, _ := cs.Items(inst("web-1")); items[nudge.PushrevKey] != revs["web-1"] {
		t.Errorf("an unchanged manifest was nudged: pushrev %q, was %q", items[nudge.PushrevKey], revs["web-1"])
	}
}

// mustNudger opens the nudger cfg describes.
func mustNudger(t *testing.T, cfg *Config) *nudge.Nudger {
	t.Helper()
	n, err := newNudger(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Close(t.Context()) })
	return n
}

// TestDeployWithoutConfig: with no push config in the bucket, -deploy
// updates the servers that already have a manifest, and a server without
// one (a typo) refuses the whole release before anything is uploaded.
func TestDeployWithoutConfig(t *testing.T) {
	bucket := "file://" + t.TempDir()
	store := openStore(t, bucket)
	if err := store.Put(t.Context(), "servers/web-1.json", []byte(`{"packages": []}`)); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(bucket, "hello", appTree(t))
	cfg.Deploy = []string{"web-1", "web-typo"}
	if _, err := Run(t.Context(), cfg); !errors.Is(err, cli.ErrUsage) || !errors.Is(err, fleet.ErrNotAllowed) || !strings.Contains(err.Error(), "server web-typo has no manifest, and there is no push config") {
		t.Fatalf("Run = %v, want the typo refused", err)
	}
	if names, _ := store.ListPackageNames(t.Context(), "hello"); len(names) != 0 {
		t.Errorf("packages stored by a refused release: %v", names)
	}
	if _, v, err := store.ReadManifest(t.Context(), manifest.Server("web-typo")); err != nil || v != "" {
		t.Errorf("a manifest was written for the typo: %q, %v", v, err)
	}
	cfg.Deploy = []string{"web-1"}
	res, err := Run(t.Context(), cfg)
	if err != nil || !slices.Equal(res.Deployed, []manifest.Target{manifest.Server("web-1")}) {
		t.Fatalf("Run = %+v, %v; want web-1 deployed", res, err)
	}
	if m, _, _ := store.ReadManifest(t.Context(), manifest.Server("web-1")); len(m.Packages) != 1 || m.Packages[0].Package != res.Name {
		t.Errorf("web-1 manifest %+v", m)
	}
}

// TestMissingBucketDirectory: a file:// bucket whose directory does not
// exist (a typo) is refused by a release, a listing and an import, with
// one line naming the directory, and nothing is created nor uploaded;
// with Create (-create) a release or an import makes it and says so in
// its log, and an existing directory needs no -create.
func TestMissingBucketDirectory(t *testing.T) {
	tree := appTree(t)
	for _, tc := range []struct {
		name     string
		exists   bool // the bucket directory is there beforehand
		cfg      func(bucket string) Config
		wantErr  string // with the directory for DIR and the URL for URL; "" for success
		wantMade bool   // the log says the directory was made
	}{
		{"release", false, func(b string) Config { return testConfig(b, "hello", tree) },
			"release: bucket URL: directory DIR does not exist (give -create to make a new bucket there)", false},
		{"release -create", false, func(b string) Config {
			c := testConfig(b, "hello", tree)
			c.Create = true
			return c
		}, "", true},
		{"release into an existing directory", true, func(b string) Config { return testConfig(b, "hello", tree) }, "", false},
		{"release -create into an existing directory", true, func(b string) Config {
			c := testConfig(b, "hello", tree)
			c.Create = true
			return c
		}, "", false},
		{"list", false, func(b string) Config { return Config{Bucket: b, App: "hello", List: true} },
			"release: bucket URL: directory DIR does not exist", false},
		{"import", false, func(b string) Config { return Config{Bucket: b, ImportSkia: "file://" + t.TempDir()} },
			"release: bucket URL: directory DIR does not exist (give -create to make a new bucket there)", false},
		{"import -create", false, func(b string) Config {
			return Config{Bucket: b, ImportSkia: "file://" + t.TempDir(), Create: true}
		}, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "bucket")
			if tc.exists {
				if err := os.Mkdir(dir, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			bucket := "file://" + dir
			var logs, out strings.Builder
			cfg := tc.cfg(bucket)
			cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			cfg.Out = &out
			_, err := Run(t.Context(), cfg)
			if tc.wantErr != "" {
				want := strings.NewReplacer("URL", bucket, "DIR", dir).Replace(tc.wantErr)
				if err == nil || err.Error() != want || !errors.Is(err, blobstore.ErrNotFound) {
					t.Fatalf("Run = %v\nwant %s", err, want)
				}
				if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("the bucket directory was made: %v", err)
				}
				if out.Len() > 0 {
					t.Errorf("stdout %q, want nothing", out.String())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Fatalf("bucket directory: %v", err)
			}
			if made := strings.Contains(logs.String(), "bucket directory created"); made != tc.wantMade {
				t.Errorf("log says the directory was made: %v, want %v\n%s", made, tc.wantMade, logs.String())
			}
		})
	}
}

// TestDeployGroup checks -deploy-group: one write of the group's manifest,
// audited under the group, and one message on the group's topic, whatever
// the group's size; an app the config does not allow on the group is
// refused for that group only.
func TestDeployGroup(t *testing.T) {
	bucket := "file://" + t.TempDir()
	store := openStore(t, bucket)
	if err := store.Put(t.Context(), "config/push.json", []byte(`{"servers": {}, "groups": {"web": ["hello"], "db": ["pg"]}}`)); err != nil {
		t.Fatal(err)
	}
	topic := "mem://release-deploy-group"
	tp, err := pubsub.OpenTopic(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	defer tp.Shutdown(t.Context())
	sub, err := pubsub.OpenSubscription(t.Context(), topic)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Shutdown(t.Context())

	cfg := testConfig(bucket, "hello", appTree(t))
	refused := cfg
	refused.DeployGroups = []string{"web", "db"} // its nudger would close the test's mem:// topic
	if _, err := Run(t.Context(), refused); !errors.Is(err, cli.ErrUsage) || !errors.Is(err, fleet.ErrNotAllowed) || !strings.Contains(err.Error(), "group db") {
		t.Fatalf("Run = %v, want db refused before the upload", err)
	}
	if names, _ := store.ListPackageNames(t.Context(), "hello"); len(names) != 0 {
		t.Errorf("packages stored by a refused release: %v", names)
	}
	cfg.DeployGroups = []string{"web"}
	cfg.Nudge.Topic = topic
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Deployed, []manifest.Target{manifest.Group("web")}) {
		t.Errorf("Deployed = %v", res.Deployed)
	}
	m, _, err := store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, ok := m.Lookup("hello"); err != nil || !ok || e.Package != res.Name || m.Revision != 1 {
		t.Fatalf("groups/web.json = %+v, %v", m, err)
	}
	if servers, _ := store.ListServers(t.Context()); len(servers) != 0 {
		t.Errorf("server manifests written: %v", servers)
	}
	if recs, _ := store.ListAudit(t.Context(), manifest.Group("web"), 10); len(recs) != 1 || recs[0].Group != "web" {
		t.Errorf("group audit = %v", recs)
	}
	msg, err := sub.Receive(t.Context())
	if err != nil || string(msg.Body) != nudge.Address(manifest.Group("web")) {
		t.Fatalf("nudge message %v, %v; want %q", msg, err, nudge.Address(manifest.Group("web")))
	}
	msg.Ack()
}

// TestRolloutFlag checks -rollout: the package is stored and a rollout of
// it starts on the group with the group's strategy from the push config
// (here one canary), its first step written into the group's manifest; a
// group the config does not allow the app on is refused before the upload.
func TestRolloutFlag(t *testing.T) {
	bucket := "file://" + t.TempDir()
	store := openStore(t, bucket)
	if err := store.Put(t.Context(), "config/push.json", []byte(`{"servers": {}, "groups": {"web": ["hello"]}, "rollouts": {"web": {"canary": 1, "auto_revert": true}}}`)); err != nil {
		t.Fatal(err)
	}
	old := deploytest.Build(t, store, "hello", 1, nil)
	if _, err := store.UpdateManifestAt(t.Context(), manifest.Group("web"), "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{{Package: old}}})); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"web-1", "web-2", "api-1"} {
		st := &manifest.Status{Server: h, PollSeconds: 300, Envs: []manifest.EnvStatus{}}
		if h != "api-1" {
			st.Groups = []manifest.GroupStatus{{Name: "web", Revision: 1}}
		}
		if err := store.WriteStatus(t.Context(), st); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(bucket, "hello", appTree(t))
	cfg.Rollouts = []string{"db"}
	if _, err := Run(t.Context(), cfg); !errors.Is(err, fleet.ErrNotAllowed) {
		t.Fatalf("Run -rollout db = %v, want refused", err)
	}
	cfg.Rollouts = []string{"web"}
	res, err := Run(t.Context(), cfg)
	if err != nil || len(res.Rollouts) != 1 {
		t.Fatalf("Run = %+v, %v", res, err)
	}
	rec, _, err := store.ReadRollout(t.Context(), blobstore.RolloutRef{Group: "web", Env: "hello", ID: res.Rollouts[0].ID})
	if err != nil || rec.State != manifest.RolloutRunning || rec.Previous != old || !rec.Strategy.AutoRevert || len(rec.History[0].Canaries) != 1 || rec.History[0].Canaries[0] == "api-1" {
		t.Fatalf("rollout record %+v, %v", rec, err)
	}
	m, _, _ := store.ReadManifest(t.Context(), manifest.Group("web"))
	if e, _ := m.Lookup("hello"); e.Package != res.Name || e.Rollout == nil || e.Rollout.Previous != old {
		t.Errorf("group entry %+v, want the new package under a rollout from the old one", e)
	}
}

// TestRolloutOutput checks what a release with -deploy and -rollout prints
// on stdout: the package name first, then "rollout GROUP ID" for each
// rollout started; or, with JSON (-o json), one object naming the package,
// its sha256, the servers deployed and the rollouts started. A rollout
// that cannot start after the upload (group empty has no members) fails
// the release with ErrDeploy, is missing from the output, and is the
// object's error.
func TestRolloutOutput(t *testing.T) {
	for _, tc := range []struct {
		name string
		json bool
	}{
		{"text", false},
		{"json", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bucket := "file://" + t.TempDir()
			store := openStore(t, bucket)
			if err := store.Put(t.Context(), "config/push.json", []byte(`{"servers": {"web-1": ["hello"]}, "groups": {"web": ["hello"], "empty": ["hello"]}, "rollouts": {"web": {"canary": 1}}}`)); err != nil {
				t.Fatal(err)
			}
			old := deploytest.Build(t, store, "hello", 1, nil)
			for _, g := range []string{"web", "empty"} {
				if _, err := store.UpdateManifestAt(t.Context(), manifest.Group(g), "", false, blobstore.Replace(&manifest.Manifest{Packages: []manifest.Entry{{Package: old}}})); err != nil {
					t.Fatal(err)
				}
			}
			for _, h := range []string{"web-1", "web-2"} {
				st := &manifest.Status{Server: h, PollSeconds: 300, Envs: []manifest.EnvStatus{}, Groups: []manifest.GroupStatus{{Name: "web", Revision: 1}}}
				if err := store.WriteStatus(t.Context(), st); err != nil {
					t.Fatal(err)
				}
			}
			var out strings.Builder
			cfg := testConfig(bucket, "hello", appTree(t))
			cfg.Deploy, cfg.Rollouts, cfg.JSON, cfg.Out = []string{"web-1"}, []string{"web", "empty"}, tc.json, &out
			res, err := Run(t.Context(), cfg)
			if !errors.Is(err, ErrDeploy) || !strings.Contains(err.Error(), "group empty") {
				t.Fatalf("Run = %v, want ErrDeploy naming group empty", err)
			}
			if len(res.Rollouts) != 1 || res.Rollouts[0].Group != "web" || res.Rollouts[0].Env != "hello" || res.Rollouts[0].ID == "" {
				t.Fatalf("Rollouts = %+v, want the one on web (%v)", res.Rollouts, err)
			}
			if _, _, err := store.ReadRollout(t.Context(), blobstore.RolloutRef{Group: "web", Env: "hello", ID: res.Rollouts[0].ID}); err != nil {
				t.Fatalf("the rollout printed is not in the bucket: %v", err)
			}
			// A group rolled out is not also deployed at once: its manifest
			// changes one step at a time, or not at all.
			if !slices.Equal(res.Deployed, []manifest.Target{manifest.Server("web-1")}) {
				t.Errorf("Deployed = %v, want web-1 only", res.Deployed)
			}
			if m, _, err := store.ReadManifest(t.Context(), manifest.Group("empty")); err != nil || m.Packages[0].Package != old {
				t.Errorf("groups/empty.json = %+v, %v; want %s left as it was", m, err, old)
			}
			if !tc.json {
				want := res.Name.String() + "\nrollout web " + res.Rollouts[0].ID + "\n"
				if out.String() != want {
					t.Errorf("stdout\n%s\nwant\n%s", out.String(), want)
				}
				return
			}
			var got map[string]any
			dec := json.NewDecoder(strings.NewReader(out.String()))
			if err := dec.Decode(&got); err != nil {
				t.Fatalf("stdout is not a JSON object: %v\n%s", err, out.String())
			}
			if dec.More() {
				t.Errorf("stdout holds more than one JSON value:\n%s", out.String())
			}
			want := map[string]any{
				"package":  res.Name.String(),
				"sha256":   res.Meta.SHA256,
				"signed":   false,
				"deployed": []any{map[string]any{"kind": "server", "name": "web-1"}},
				"rollouts": []any{map[string]any{"group": "web", "env": "hello", "id": res.Rollouts[0].ID}},
				"error":    strings.TrimPrefix(err.Error(), "release: "),
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("stdout\n%s\nwant %v", out.String(), want)
			}
		})
	}
}

// TestJSONResultEmpty: with nothing deployed nor rolled out, -o json still
// prints deployed and rollouts, as empty lists, and no error.
func TestJSONResultEmpty(t *testing.T) {
	var out strings.Builder
	cfg := testConfig("file://"+t.TempDir(), "hello", appTree(t))
	cfg.JSON, cfg.Out = true, &out
	res, err := Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := `{
  "package": "` + res.Name.String() + `",
  "sha256": "` + res.Meta.SHA256 + `",
  "signed": false,
  "deployed": [],
  "rollouts": []
}
`
	if out.String() != want {
		t.Errorf("stdout\n%s\nwant\n%s", out.String(), want)
	}
}
