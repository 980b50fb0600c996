package pulldtest_test

import (
	"os"
	"slices"
	"testing"

	"github.com/pushpull/pushpull/internal/testing/deploytest"
	"github.com/pushpull/pushpull/internal/testing/pulldtest"
	"github.com/pushpull/pushpull/manifest"
)

// TestStepsApp checks that StepsApp's package holds the six scripts,
// executable, and its version file, and that Expect spells the lines its
// scripts log.
func TestStepsApp(t *testing.T) {
	modes := map[string]int64{}
	for _, e := range deploytest.Entries(pulldtest.StepsApp("v1")) {
		modes[e.Header.Name] = e.Header.Mode
	}
	for _, s := range pulldtest.Steps {
		if modes["teletraan/"+s] != 0o755 {
			t.Errorf("teletraan/%s: mode %o, want 755", s, modes["teletraan/"+s])
		}
	}
	if modes["version.txt"] != 0o644 {
		t.Errorf("version.txt: mode %o, want 644 (entries %v)", modes["version.txt"], modes)
	}
	p := deploytest.Name(t, "hello", 1, manifest.FormatZstd)
	if got, want := pulldtest.Expect(p, "DEPLOY", "PRE_RESTART", "RESTARTING"), []string{
		"PRE_RESTART DEPLOY hello-20261122T100100Z-abc000000001.tar.zst",
		"RESTARTING DEPLOY hello-20261122T100100Z-abc000000001.tar.zst",
	}; !slices.Equal(got, want) {
		t.Errorf("Expect = %q, want %q", got, want)
	}
}

// TestStepLog checks that Take returns each logged line once, in order.
func TestStepLog(t *testing.T) {
	l := pulldtest.NewStepLog(t)
	if got := l.Take(t); len(got) != 0 {
		t.Fatalf("Take before any line = %q", got)
	}
	appendLine := func(s string) {
		f, err := os.OpenFile(l.Path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteString(s + "\n"); err != nil {
			t.Fatal(err)
		}
	}
	appendLine("PRE_RESTART DEPLOY a")
	appendLine("RESTARTING DEPLOY a")
	if got, want := l.Take(t), []string{"PRE_RESTART DEPLOY a", "RESTARTING DEPLOY a"}; !slices.Equal(got, want) {
		t.Errorf("first Take = %q, want %q", got, want)
	}
	appendLine("POST_RESTART DEPLOY a")
	if got, want := l.Take(t), []string{"POST_RESTART DEPLOY a"}; !slices.Equal(got, want) {
		t.Errorf("second Take = %q, want %q", got, want)
	}
	if got := l.Lines(t); len(got) != 3 {
		t.Errorf("Lines = %q, want all three", got)
	}
	if got := l.Config(); got[pulldtest.StepsLogKey] != l.Path {
		t.Errorf("Config = %v", got)
	}
}
