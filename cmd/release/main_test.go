package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// helperEnv makes the test binary act as release itself (see TestMain), so
// tests can run several release processes at once.
const helperEnv = "RELEASE_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		os.Exit(helper(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// helper runs release with args; with RELEASE_TEST_LOOP=N it runs it N
// times, replacing {i} in args by 1…N (so each run releases a new commit),
// and stops at the first failure.
func helper(args []string) int {
	n, _ := strconv.Atoi(os.Getenv("RELEASE_TEST_LOOP"))
	if n == 0 {
		return run(args, os.Stdout, os.Stderr)
	}
	for i := 1; i <= n; i++ {
		a := make([]string, len(args))
		for j, s := range args {
			a[j] = strings.ReplaceAll(s, "{i}", commitN(i))
		}
		if code := run(a, os.Stdout, os.Stderr); code != 0 {
			return code
		}
	}
	return 0
}

// commitN returns the nth test commit, whose first 12 digits (those in
// package names) differ from every other's.
func commitN(n int) string { return fmt.Sprintf("%012x%028d", n, 0) }

// writeTree writes files (name → content; names of scripts under
// teletraan/ are made executable) under dir.
func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, data := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if strings.HasPrefix(name, "teletraan/") && strings.ToUpper(filepath.Base(name)) == filepath.Base(name) {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(data), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentDeploy runs two release processes at once, each releasing
// its own app several times with -deploy to the same two servers: every
// manifest write must land (none lost to the other process), so each
// server ends with both apps at their last release and one revision per
// write.
func TestConcurrentDeploy(t *testing.T) {
	const rounds = 8
	dir := t.TempDir()
	bucket := "file://" + dir
	if err := os.MkdirAll(filepath.Join(dir, "config"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config", "push.json"), []byte(`{"servers": {"web-1": ["alpha", "beta"], "web-2": ["alpha", "beta"]}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	writeTree(t, tree, map[string]string{"teletraan/RESTARTING": "#!/bin/sh\n", "data": "x"})
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	apps := []string{"alpha", "beta"}
	cmds := make([]*exec.Cmd, len(apps))
	outs := make([]strings.Builder, len(apps))
	for i, app := range apps {
		cmd := exec.CommandContext(t.Context(), exe, "-bucket", bucket, "-app", app, "-dir", tree, "-commit", "{i}", "-deploy", "web-1,web-2")
		cmd.Env = append(os.Environ(), helperEnv+"=1", "RELEASE_TEST_LOOP="+strconv.Itoa(rounds))
		cmd.Stdout, cmd.Stderr = &outs[i], &outs[i]
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds[i] = cmd
	}
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Fatalf("%s: %v\n%s", apps[i], err, outs[i].String())
		}
	}
	store, err := blobstore.Open(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	last := commitN(rounds)[:manifest.CommitLen]
	for _, server := range []string{"web-1", "web-2"} {
		m, _, err := store.ReadManifest(t.Context(), manifest.Server(server))
		if err != nil {
			t.Fatal(err)
		}
		if m.Revision != 2*rounds {
			t.Errorf("%s: revision %d after %d writes: a write was lost\n%s", server, m.Revision, 2*rounds, m.Marshal())
		}
		for _, app := range apps {
			e, ok := m.Lookup(app)
			if !ok || e.Package.Commit != last {
				t.Errorf("%s: %s entry %+v, want commit %s\n%s", server, app, e, last, m.Marshal())
			}
		}
		recs, err := store.ListAudit(t.Context(), manifest.Server(server), 100)
		if err != nil || len(recs) != 2*rounds {
			t.Errorf("%s: %d audit records (%v), want %d", server, len(recs), err, 2*rounds)
		}
	}
}

// TestTranscripts runs the scripts in testdata/*.txt. Each is a sequence of
// commands and what they must print:
//
//	# comment
//	$ release ARGS…       run release in-process ($BUCKET, $TREE expanded)
//	$ cat KEY             print an object of the bucket
//	$ cp FILE KEY         copy testdata/FILE into the bucket's directory, as a person would
//	> LINE                the next line of stdout, exactly
//	! TEXT                stderr contains TEXT
//	? N                   the exit status (0 when absent)
//
// Arguments are split at spaces, except inside double quotes. Output is
// normalised before comparison: build times become {TIME}, dates {DATE},
// sha256 sums {SHA}, the bucket and tree paths $BUCKET and $TREE, the
// current user $USER, and runs of spaces after text (table padding) two
// spaces.
func TestTranscripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no transcripts: %v", err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".txt"), func(t *testing.T) {
			runTranscript(t, file)
		})
	}
}

// transcriptTrees are the trees under $TREE transcripts release.
var transcriptTrees = map[string]map[string]string{
	"ok":     {"teletraan/RESTARTING": "#!/bin/sh\necho restarting\n", "teletraan/app.conf.tmpl": "x={$TELETRAAN_X:1}\n", "bin/hello": "hello\n"},
	"bad":    {"teletraan/RESTARTNG": "#!/bin/sh\n", "teletraan/STOPPING.sh": "#!/bin/sh\n"},
	"config": {"config.json": "{}\n"},
}

func runTranscript(t *testing.T, file string) {
	bucketDir := t.TempDir()
	bucket := "file://" + bucketDir
	treeDir := t.TempDir()
	for name, files := range transcriptTrees {
		writeTree(t, filepath.Join(treeDir, name), files)
	}
	if err := os.Chmod(filepath.Join(treeDir, "bad/teletraan/STOPPING.sh"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PUSHPULL_SIGN_PASSWORD", "")
	t.Setenv("PUSHPULL_NUDGE_TOPIC", "")
	t.Setenv("PUSHPULL_NUDGE_URL", "")
	t.Setenv("PUSHPULL_NUDGE_GCE", "")
	userName := ""
	if u, err := user.Current(); err == nil {
		userName = u.Username
	}
	expand := func(s string) string {
		return strings.NewReplacer("$BUCKET", bucket, "$TREE", treeDir).Replace(s)
	}
	var (
		timeRE = regexp.MustCompile(`\d{8}T\d{6}Z`)
		dateRE = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)
		shaRE  = regexp.MustCompile(`[0-9a-f]{64}`)
		padRE  = regexp.MustCompile(`(\S)  +`)
		userRE = regexp.MustCompile(`\b` + regexp.QuoteMeta(userName) + `\b`)
	)
	normalise := func(s string) string {
		s = strings.NewReplacer(bucket, "$BUCKET", bucketDir, "$BUCKET", treeDir, "$TREE").Replace(s)
		s = timeRE.ReplaceAllString(s, "{TIME}")
		s = dateRE.ReplaceAllString(s, "{DATE}")
		s = shaRE.ReplaceAllString(s, "{SHA}")
		if userName != "" {
			s = userRE.ReplaceAllString(s, "$$USER")
		}
		return padRE.ReplaceAllString(s, "$1  ")
	}

	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		line   int
		cmd    string
		stdout []string
		stderr []string
		code   int
	}
	var steps []*step
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		prefix, rest, _ := strings.Cut(line, " ")
		if prefix == "$" {
			steps = append(steps, &step{line: n, cmd: rest})
			continue
		}
		if len(steps) == 0 {
			t.Fatalf("%s:%d: expectation before any command", file, n)
		}
		s := steps[len(steps)-1]
		switch prefix {
		case ">":
			s.stdout = append(s.stdout, rest)
		case "!":
			s.stderr = append(s.stderr, rest)
		case "?":
			if s.code, err = strconv.Atoi(rest); err != nil {
				t.Fatalf("%s:%d: %v", file, n, err)
			}
		default:
			t.Fatalf("%s:%d: unknown line %q", file, n, line)
		}
	}

	for _, s := range steps {
		args := splitArgs(expand(s.cmd))
		var stdout, stderr strings.Builder
		code := 0
		switch args[0] {
		case "release":
			code = run(args[1:], &stdout, &stderr)
		case "cp":
			dst := filepath.Join(bucketDir, filepath.FromSlash(args[2]))
			b, err := os.ReadFile(filepath.Join("testdata", args[1]))
			if err == nil {
				err = os.MkdirAll(filepath.Dir(dst), 0o755)
			}
			if err == nil {
				err = os.WriteFile(dst, b, 0o644)
			}
			if err != nil {
				t.Fatalf("%s:%d: %v", file, s.line, err)
			}
		case "cat":
			b, err := os.ReadFile(filepath.Join(bucketDir, args[1]))
			if err != nil {
				code = 1
				fmt.Fprintln(&stderr, err)
			}
			stdout.Write(b)
		default:
			t.Fatalf("%s:%d: unknown command %q", file, s.line, args[0])
		}
		gotOut, gotErr := normalise(stdout.String()), normalise(stderr.String())
		want := strings.Join(s.stdout, "\n")
		if len(s.stdout) > 0 {
			want += "\n"
		}
		if gotOut != want {
			t.Errorf("%s:%d: $ %s\nstdout:\n%s\nwant:\n%s", file, s.line, s.cmd, gotOut, want)
		}
		for _, w := range s.stderr {
			if !strings.Contains(gotErr, w) {
				t.Errorf("%s:%d: $ %s\nstderr does not contain %q:\n%s", file, s.line, s.cmd, w, gotErr)
			}
		}
		if code != s.code {
			t.Errorf("%s:%d: $ %s\nexit %d, want %d; stderr:\n%s", file, s.line, s.cmd, code, s.code, gotErr)
		}
	}
}

// splitArgs splits a command line at spaces, keeping "quoted text" (without
// its quotes) as one argument.
func splitArgs(s string) []string {
	var args []string
	var cur strings.Builder
	quoted, started := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, started = !quoted, true
		case r == ' ' && !quoted:
			if started {
				args = append(args, cur.String())
				cur.Reset()
				started = false
			}
		default:
			cur.WriteRune(r)
			started = true
		}
	}
	if started {
		args = append(args, cur.String())
	}
	return args
}
