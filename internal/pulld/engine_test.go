package pulld

import (
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"aead.dev/minisign"

	"github.com/pushpull/pushpull/internal/cli"
)

// TestEngineConfigVerifyKeys: every -verify-key file becomes a trusted key
// of the engine, in order, and an unreadable key is a usage error naming
// the flag.
func TestEngineConfigVerifyKeys(t *testing.T) {
	dir := t.TempDir()
	var paths []string
	var ids []uint64
	for _, name := range []string{"old.pub", "new.pub"} {
		pub, _, err := minisign.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		text, err := pub.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, append([]byte("untrusted comment: minisign public key\n"), text...), 0o644); err != nil {
			t.Fatal(err)
		}
		paths, ids = append(paths, p), append(ids, pub.ID())
	}
	pc, err := engineConfig(Config{VerifyKeys: paths}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(pc.VerifyKeys) != 2 || pc.VerifyKeys[0].ID() != ids[0] || pc.VerifyKeys[1].ID() != ids[1] {
		t.Fatalf("engine trusts %d keys, want the 2 given in order", len(pc.VerifyKeys))
	}
	if pc, err := engineConfig(Config{}, nil); err != nil || len(pc.VerifyKeys) != 0 {
		t.Fatalf("no -verify-key: %d keys, %v; want none", len(pc.VerifyKeys), err)
	}
	bad := filepath.Join(dir, "bad.pub")
	if err := os.WriteFile(bad, []byte("not a key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := engineConfig(Config{VerifyKeys: []string{paths[0], bad}}, nil); !errors.Is(err, cli.ErrUsage) {
		t.Fatalf("bad key file: %v, want cli.ErrUsage", err)
	}
}
