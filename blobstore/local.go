package blobstore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// This file is the package path of file:// buckets. fileblob can neither
// replace an object's metadata nor skip the MD5 it computes of everything
// it writes, so sealing through the portable API would hash the package a
// third time and copy it whole. Instead, a package is staged as a plain file
// in the bucket directory and sealed by hard-linking it under its key (the
// link fails if the key exists) and writing the attributes sidecar that
// fileblob reads, in fileblob's format, under the bucket's exclusive lock.
// Everything else still goes through fileblob, which is how the contract
// tests check that the two agree. The data file is not fsynced, as fileblob
// does not fsync either; the sidecar is written with renameio.

// attrsSuffix is the suffix of fileblob's attributes sidecar.
const attrsSuffix = ".attrs"

// fileAttrs is the sidecar fileblob keeps beside each object (its xattrs
// type). Objects sealed here carry no MD5: fileblob records one only for
// what it wrote itself, and packages are identified by their sha256.
type fileAttrs struct {
	CacheControl       string            `json:"user.cache_control"`
	ContentDisposition string            `json:"user.content_disposition"`
	ContentEncoding    string            `json:"user.content_encoding"`
	ContentLanguage    string            `json:"user.content_language"`
	ContentType        string            `json:"user.content_type"`
	Metadata           map[string]string `json:"user.metadata"`
}

// localPath returns the file that holds key in a file:// bucket, and false
// when the bucket is not file:// or fileblob would escape the key's file
// name (the package path then falls back to the portable API). The keys
// this package builds never need escaping; only an unusual prefix does.
func (s *Store) localPath(key string) (string, bool) {
	if s.backend != backendFile {
		return "", false
	}
	k := s.prefix + key
	if k == "" || strings.HasPrefix(k, "/") || strings.HasSuffix(k, "/") ||
		strings.HasSuffix(k, attrsSuffix) || strings.Contains(k, "//") || strings.Contains(k, "..") {
		return "", false
	}
	for _, seg := range strings.Split(k, "/") {
		if seg == "." {
			return "", false
		}
	}
	for _, c := range k {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/+=@", c)
		if !ok {
			return "", false
		}
	}
	return filepath.Join(s.dir, filepath.FromSlash(k)), true
}

// createLocal creates the file for staging key, which must not exist.
func createLocal(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o777); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
}

// sealLocal makes the staged file src visible as the object at dst with
// metadata md. It links the data first, so that the object's existence is
// decided by one exclusive create, then writes the sidecar; readers that
// take the bucket's shared lock never see the object without it.
func (s *Store) sealLocal(src, dst string, md map[string]string) error {
	unlock, err := s.lock(true)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := os.Lstat(dst); err == nil {
		return fmt.Errorf("%s exists: %w", filepath.Base(dst), ErrConflict)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	attrs, err := json.Marshal(fileAttrs{ContentType: "application/octet-stream", Metadata: md})
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o777); err != nil {
		return err
	}
	if err := os.Link(src, dst); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists: %w", filepath.Base(dst), ErrConflict)
		}
		return err
	}
	if err := renameio.WriteFile(dst+attrsSuffix, attrs, 0o666); err != nil {
		_ = os.Remove(dst)
		return err
	}
	return nil
}
