package blobstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"sync"

	"gocloud.dev/blob"
)

// memDriver is the mem:// backend, for tests: Versions are content MD5s
// (memblob's own), and conditional writes and seals are serialised by a
// mutex, which suffices because a mem:// bucket lives in one process.
type memDriver struct {
	portable
	mu sync.Mutex
}

func (d *memDriver) read(ctx context.Context, key string) (document, error) {
	r, data, err := d.readAll(ctx, key)
	if err != nil {
		return document{}, err
	}
	return document{data, contentVersion(data), r.ModTime()}, nil
}

// listed is the listing's MD5, as stat's is the attributes'.
func (d *memDriver) listed(_ context.Context, o *blob.ListObject) (Version, string, error) {
	if len(o.MD5) == 0 {
		return "", "", fmt.Errorf("blobstore: list %s: memblob gave no MD5", o.Key)
	}
	return Version(listedMD5(o)), listedMD5(o), nil
}

func (d *memDriver) stat(ctx context.Context, key string) (Version, error) {
	a, err := d.attrs(ctx, key)
	if err != nil || a == nil {
		return "", err
	}
	if len(a.MD5) == 0 {
		return "", fmt.Errorf("blobstore: stat %s: memblob gave no MD5", key)
	}
	return Version(hex.EncodeToString(a.MD5)), nil
}

func (d *memDriver) write(ctx context.Context, key string, data []byte, ifVersion Version) (Version, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	cur, err := d.stat(ctx, key)
	if err != nil {
		return "", err
	}
	if cur != ifVersion {
		return "", conflict(key)
	}
	if err := d.put(ctx, key, data); err != nil {
		return "", err
	}
	return contentVersion(data), nil
}

func (d *memDriver) seal(ctx context.Context, staging, key string, md map[string]string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if a, err := d.attrs(ctx, key); err != nil {
		return err
	} else if a != nil {
		return conflict(key)
	}
	return d.copyWithMetadata(ctx, staging, key, md)
}

func (d *memDriver) checkConditional(context.Context) error { return nil }
