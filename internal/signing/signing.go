// Package signing signs and verifies packages with minisign (Ed25519 over a
// BLAKE2b-512 prehash, the format `minisign -Vm` checks), binding each
// signature to a package name and the package's sha256 through the signed
// trusted comment, so a signature cannot be moved onto another package.
//
// Both sides stream: a Hasher sees the package bytes once, as they are
// written (release) or read (pkginstall), and signs or verifies at the end.
package signing

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"aead.dev/minisign"
)

// ErrBadSignature is wrapped by every verification failure: a malformed
// signature, another key, other bytes, or a trusted comment that names
// another package or checksum.
var ErrBadSignature = errors.New("bad signature")

// TrustedComment returns the trusted comment a package signature carries.
func TrustedComment(name, sha256 string) string {
	return "pushpull package:" + name + " sha256:" + sha256
}

// Hasher computes the minisign digest of the bytes written to it. It is an
// io.Writer that never fails; put it in an io.MultiWriter beside the
// destination. A Hasher is not safe for concurrent use.
type Hasher struct {
	feed feeder
	r    *minisign.Reader
	buf  []byte
}

// NewHasher returns a Hasher that has seen no bytes.
func NewHasher() *Hasher {
	h := &Hasher{buf: make([]byte, 32<<10)}
	h.r = minisign.NewReader(&h.feed)
	return h
}

// feeder hands the Reader the bytes of the current Write.
type feeder struct{ p []byte }

func (f *feeder) Read(b []byte) (int, error) {
	if len(f.p) == 0 {
		return 0, io.EOF
	}
	n := copy(b, f.p)
	f.p = f.p[n:]
	return n, nil
}

// Write adds p to the digest.
func (h *Hasher) Write(p []byte) (int, error) {
	h.feed.p = p
	for len(h.feed.p) > 0 {
		_, _ = h.r.Read(h.buf) // the feeder cannot fail
	}
	return len(p), nil
}

// Sign returns a signature, in minisign's file format, of the bytes written
// so far, whose trusted comment binds them to name and sha256.
func (h *Hasher) Sign(key minisign.PrivateKey, name, sha256 string) []byte {
	untrusted := fmt.Sprintf("signature from pushpull release, key %X", key.ID())
	return h.r.SignWithComments(key, TrustedComment(name, sha256), untrusted)
}

// Verify checks that sig is the signature of the bytes written so far by
// one of keys (the one whose ID the signature names; several keys let a
// fleet trust the old and the new key while signing keys are rotated), and
// that its trusted comment names exactly name and sha256.
func (h *Hasher) Verify(keys []minisign.PublicKey, sig []byte, name, sha256 string) error {
	var s minisign.Signature
	if err := s.UnmarshalText(sig); err != nil {
		return fmt.Errorf("%w: %v", ErrBadSignature, err)
	}
	i := slices.IndexFunc(keys, func(k minisign.PublicKey) bool { return k.ID() == s.KeyID })
	if i < 0 {
		ids := make([]string, len(keys))
		for j, k := range keys {
			ids[j] = fmt.Sprintf("%X", k.ID())
		}
		return fmt.Errorf("%w: signed by key %X, trusted keys: %s", ErrBadSignature, s.KeyID, strings.Join(ids, ", "))
	}
	key := keys[i]
	if want := TrustedComment(name, sha256); s.TrustedComment != want {
		return fmt.Errorf("%w: trusted comment %q does not name this package (want %q)", ErrBadSignature, s.TrustedComment, want)
	}
	if !h.r.Verify(key, sig) {
		return fmt.Errorf("%w: signature does not match the package bytes", ErrBadSignature)
	}
	return nil
}

// LoadPrivateKey reads a minisign secret key file (as `minisign -G` writes
// it). An encrypted key is decrypted with password; an unencrypted one
// (`minisign -G -W`) needs none.
func LoadPrivateKey(path, password string) (minisign.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("signing key: %w", err)
	}
	var key minisign.PrivateKey
	if minisign.IsEncrypted(b) {
		key, err = minisign.DecryptKey(password, b)
	} else {
		err = key.UnmarshalText(b)
	}
	if err != nil {
		return minisign.PrivateKey{}, fmt.Errorf("signing key %s: %w", path, err)
	}
	return key, nil
}

// LoadPublicKey reads a minisign public key: a file as `minisign -G`
// writes it (comment line and key), or a file holding just the base64 key.
func LoadPublicKey(path string) (minisign.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return minisign.PublicKey{}, fmt.Errorf("verify key: %w", err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	var key minisign.PublicKey
	if err := key.UnmarshalText([]byte(strings.TrimSpace(lines[len(lines)-1]))); err != nil {
		return minisign.PublicKey{}, fmt.Errorf("verify key %s: %w", path, err)
	}
	return key, nil
}
