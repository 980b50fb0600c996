package signing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"aead.dev/minisign"
)

func TestSignVerify(t *testing.T) {
	pub, priv, err := minisign.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, otherPriv, _ := minisign.GenerateKey(rand.Reader)
	data := bytes.Repeat([]byte("package bytes "), 10000)
	const name, sum = "hello/hello-20261122T101500Z-0123456789ab.tar.zst", "aa"

	hash := func(b []byte) *Hasher {
		h := NewHasher()
		h.Write(b[:100])
		h.Write(b[100:])
		return h
	}
	sig := hash(data).Sign(priv, name, sum)

	// The signature is plain minisign: the library verifies it as a prehashed signature.
	if !hashOK(pub, data, sig) {
		t.Fatal("minisign does not verify the signature")
	}

	tampered := bytes.Clone(data)
	tampered[5] ^= 1
	tests := []struct {
		name      string
		data      []byte
		keys      []minisign.PublicKey
		sig       []byte
		pkg, sum  string
		wantError bool
	}{
		{"good", data, []minisign.PublicKey{pub}, sig, name, sum, false},
		{"tampered bytes", tampered, []minisign.PublicKey{pub}, sig, name, sum, true},
		{"other key", data, []minisign.PublicKey{otherPub}, sig, name, sum, true},
		{"moved to another name", data, []minisign.PublicKey{pub}, sig, "hello/hello-20261122T101500Z-ffffffffffff.tar.zst", sum, true},
		{"other checksum", data, []minisign.PublicKey{pub}, sig, name, "bb", true},
		{"garbage", data, []minisign.PublicKey{pub}, []byte("not a signature"), name, sum, true},
		{"old and new key, signed by the new", data, []minisign.PublicKey{otherPub, pub}, sig, name, sum, false},
		{"old and new key, signed by the old", data, []minisign.PublicKey{pub, otherPub}, hash(data).Sign(otherPriv, name, sum), name, sum, false},
		{"no trusted key", data, nil, sig, name, sum, true},
		{"signed by another key", data, []minisign.PublicKey{pub}, hash(data).Sign(otherPriv, name, sum), name, sum, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := hash(tt.data).Verify(tt.keys, tt.sig, tt.pkg, tt.sum)
			if tt.wantError != (err != nil) {
				t.Fatalf("Verify = %v, want error %v", err, tt.wantError)
			}
			if err != nil && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("error %v does not wrap ErrBadSignature", err)
			}
		})
	}
}

func hashOK(pub minisign.PublicKey, data, sig []byte) bool {
	r := minisign.NewReader(bytes.NewReader(data))
	buf := make([]byte, 1024)
	for {
		if _, err := r.Read(buf); err != nil {
			break
		}
	}
	return r.Verify(pub, sig)
}

func TestLoadKeys(t *testing.T) {
	pub, priv, _ := minisign.GenerateKey(rand.Reader)
	dir := t.TempDir()
	privText, _ := priv.MarshalText()
	enc, _ := minisign.EncryptKey("pw", priv)
	pubText, _ := pub.MarshalText()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	plainPath := write("plain.key", privText)
	encPath := write("enc.key", enc)
	pubPath := write("key.pub", append([]byte("untrusted comment: minisign public key\n"), pubText...))

	for _, tc := range []struct{ path, pw string }{{plainPath, ""}, {encPath, "pw"}} {
		k, err := LoadPrivateKey(tc.path, tc.pw)
		if err != nil || !k.Equal(priv) {
			t.Fatalf("LoadPrivateKey(%s) = %v, equal %v", tc.path, err, k.Equal(priv))
		}
	}
	if _, err := LoadPrivateKey(encPath, "wrong"); err == nil {
		t.Fatal("wrong password accepted")
	}
	k, err := LoadPublicKey(pubPath)
	if err != nil || !k.Equal(pub) {
		t.Fatalf("LoadPublicKey = %v", err)
	}
}
