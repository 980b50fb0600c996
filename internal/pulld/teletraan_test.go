package pulld_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/internal/cli"
	"github.com/pushpull/pushpull/internal/pulld"
	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/manifest"
)

// dumpScript writes its environment to $DUMP/$DEPLOY_STEP.env.
const dumpScript = "#!/bin/sh\nenv > \"$DUMP/$DEPLOY_STEP.env\"\n"

// dumpApp is a package whose six scripts dump their environment.
func dumpApp(version string, extra ...string) map[string]string {
	files := map[string]string{"version.txt": version + "\n"}
	for _, s := range pulldtest.Steps {
		files["teletraan/"+s] = dumpScript
	}
	for i := 0; i+1 < len(extra); i += 2 {
		files[extra[i]] = extra[i+1]
	}
	return files
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			m[k] = v
		}
	}
	return m
}

// TestTeletraanEnvironment runs pulld -once as Teletraan's agent would run
// its cycle: the download steps of a build the host does not have yet see
// its BUILD_* variables, FIRST_DEPLOY is "True" on a first deploy and unset
// otherwise, IS_DOCKER is unset, and COMPUTE_ENV_TYPE comes from
// host_info's compute_env_type, which -compute-env-type overrides.
func TestTeletraanEnvironment(t *testing.T) {
	h := newHarness(t, "file://"+t.TempDir())
	v1 := deploytest.Build(t, h.store, "hello", 1, dumpApp("v1"))
	v2 := deploytest.Build(t, h.store, "hello", 2, dumpApp("v2"))
	dump := t.TempDir()
	hostInfo := filepath.Join(t.TempDir(), "host_info")
	if err := os.WriteFile(hostInfo, []byte("host=web-1\ncompute_env_type=STAGING\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := h.cfg
	cfg.Once, cfg.Listen, cfg.HostInfo = true, "", hostInfo
	run := func(p manifest.PackageName) {
		t.Helper()
		pulldtest.SetManifest(t, h.store, "web-1", manifest.Entry{Package: p, Config: map[string]string{"DUMP": dump}})
		if err := pulld.Run(t.Context(), cfg); err != nil {
			t.Fatalf("pulld -once: %v", err)
		}
	}
	run(v1)
	first := readEnv(t, filepath.Join(dump, "RESTARTING.env"))
	if first["FIRST_DEPLOY"] != "True" || first["COMPUTE_ENV_TYPE"] != "STAGING" {
		t.Errorf("first deploy: FIRST_DEPLOY=%q COMPUTE_ENV_TYPE=%q; want True, STAGING", first["FIRST_DEPLOY"], first["COMPUTE_ENV_TYPE"])
	}
	cfg.ComputeEnvType = "CANARY"
	run(v2)
	pre := readEnv(t, filepath.Join(dump, "PRE_DOWNLOAD.env"))
	want := readEnv(t, filepath.Join(dump, "RESTARTING.env"))
	for _, k := range []string{"BUILD_COMMIT", "BUILD_REPO", "BUILD_BRANCH", "BUILD_URL", "BUILD_ID", "BUILD_NAME"} {
		if pre[k] == "" || pre[k] != want[k] {
			t.Errorf("PRE_DOWNLOAD of a build not on the host: %s=%q, want RESTARTING's %q", k, pre[k], want[k])
		}
	}
	if !strings.HasPrefix(v2.Commit, pre["BUILD_COMMIT"][:12]) || pre["BUILD_ID"] != v2.File() {
		t.Errorf("PRE_DOWNLOAD describes %s %s, want %s", pre["BUILD_ID"], pre["BUILD_COMMIT"], v2)
	}
	for _, k := range []string{"FIRST_DEPLOY", "IS_DOCKER"} {
		if v, set := pre[k]; set {
			t.Errorf("second deploy: %s=%q set, want it unset", k, v)
		}
	}
	if pre["COMPUTE_ENV_TYPE"] != "CANARY" {
		t.Errorf("COMPUTE_ENV_TYPE=%q with -compute-env-type CANARY", pre["COMPUTE_ENV_TYPE"])
	}
}

// TestTeletraanTimeoutAndRollbackLogs: through pulld -once, a hung step is
// killed at -step-timeout once, not three times, and the failure policy
// acts at once; a rollback's script runs get log files of their own beside
// the failed deploy's.
func TestTeletraanTimeoutAndRollbackLogs(t *testing.T) {
	h := newHarness(t, "file://"+t.TempDir())
	hello := "#!/bin/sh\necho \"$DEPLOY_STEP of $(cat ../version.txt)\"\n"
	v1 := deploytest.Build(t, h.store, "hello", 1, dumpApp("v1", "teletraan/POST_RESTART", hello))
	v2 := deploytest.Build(t, h.store, "hello", 2, dumpApp("v2", "teletraan/POST_RESTART", hello+"exec sleep 1000\n"))
	dump := t.TempDir()
	cfg := h.cfg
	cfg.Once, cfg.Listen, cfg.StepTimeout = true, "", 500*time.Millisecond
	pulldtest.SetManifest(t, h.store, "web-1", manifest.Entry{Package: v1, Config: map[string]string{"DUMP": dump}})
	if err := pulld.Run(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	pulldtest.SetManifest(t, h.store, "web-1", manifest.Entry{Package: v2, Config: map[string]string{"DUMP": dump}})
	start := time.Now()
	err := pulld.Run(t.Context(), cfg)
	if !errors.Is(err, pulld.ErrFailed) {
		t.Fatalf("pulld -once with a hung POST_RESTART: %v, want ErrFailed", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("took %v with a 500 ms step timeout: the hung step was retried", took)
	}
	if pulldtest.Current(t, cfg.Root, "hello") != v1.ID() {
		t.Fatal("not rolled back to v1")
	}
	logs, _ := filepath.Glob(filepath.Join(cfg.Root, "envs", "hello", "logs", "*POST_RESTART*.log"))
	var deploy, rollback []string
	for _, l := range logs {
		data, _ := os.ReadFile(l)
		switch {
		case strings.Contains(l, ".rollback."):
			rollback = append(rollback, string(data))
		case strings.Contains(string(data), "of v2"):
			deploy = append(deploy, string(data))
		}
	}
	if len(deploy) != 1 || len(rollback) != 1 || rollback[0] != "POST_RESTART of v1\n" {
		t.Fatalf("POST_RESTART logs: deploy %q, rollback %q; want one each, the rollback's v1 only", deploy, rollback)
	}
}

// TestSplay: pulld -once -splay waits before its first request (stopped
// while waiting, it has read and written nothing), and -splay is refused
// without -once.
func TestSplay(t *testing.T) {
	h := newHarness(t, "file://"+t.TempDir())
	cfg := h.cfg
	cfg.Once, cfg.Listen, cfg.Splay = true, "", time.Hour
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if err := pulld.Run(ctx, cfg); err != nil {
		t.Fatalf("pulld -once -splay 1h, stopped while waiting: %v", err)
	}
	if _, err := h.store.ReadStatus(t.Context(), "web-1"); !errors.Is(err, blobstore.ErrNotFound) {
		t.Fatalf("status written during the splay: %v", err)
	}
	cfg.Once = false
	if err := cfg.Validate(); !errors.Is(err, cli.ErrUsage) || !strings.Contains(err.Error(), "-splay is for -once") {
		t.Fatalf("-splay without -once: %v", err)
	}
}
