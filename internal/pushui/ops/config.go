package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// PushConfig is the push config in force, as last read from the bucket.
// Immutable once published.
type PushConfig struct {
	Conf    *manifest.PushConfig
	Version blobstore.Version
}

func NewPushConfig(c *manifest.PushConfig, v blobstore.Version) *PushConfig {
	return &PushConfig{Conf: c, Version: v}
}

// Conf returns the push config in force. Callers must not modify it.
func (s *Service) Conf() *manifest.PushConfig { return s.Config.Load().Conf }

// bootstrapConfig loads the bucket's push config, first writing boot there
// (write-if-absent) when the bucket holds none. A bucket that already holds
// a config different from boot keeps its own, with a warning.
func (s *Service) bootstrapConfig(ctx context.Context, boot *manifest.PushConfig) error {
	c, v, err := s.Fleet.Config(ctx)
	if err != nil {
		return fmt.Errorf("pushui: push config in the bucket: %w", err)
	}
	switch {
	case c == nil && boot == nil:
		return fmt.Errorf("pushui: no push config in the bucket (%s): give -config FILE to write one", blobstore.PushConfigKey)
	case c == nil:
		v, err = s.Fleet.PutConfig(ctx, "pushui -config", boot, "")
		if errors.Is(err, blobstore.ErrConflict) {
			return s.bootstrapConfig(ctx, boot) // another replica wrote it first
		}
		if err != nil {
			return fmt.Errorf("pushui: write the push config to the bucket: %w", err)
		}
		s.Log.Info("push config written to the bucket", "key", blobstore.PushConfigKey, "servers", len(boot.Servers))
		c = boot
	case boot != nil && string(boot.Marshal()) != string(c.Marshal()):
		s.Log.Warn("the bucket holds a different push config than -config; using the bucket's (edit it at /config or with PUT /api/config)", "key", blobstore.PushConfigKey)
	}
	s.Config.Store(NewPushConfig(c, v))
	return nil
}

// ReloadConfig follows the bucket's push config: one small request when it
// is unchanged. A config that vanished or became invalid is logged and the
// last good one kept for the pages (fleet refuses writes meanwhile).
func (s *Service) ReloadConfig(ctx context.Context) {
	c, v, err := s.Fleet.Config(ctx)
	cur := s.Config.Load()
	switch {
	case err != nil:
		s.Log.Warn("push config unusable; showing the last good one", "key", blobstore.PushConfigKey, "err", err)
	case c == nil:
		s.Log.Warn("push config missing from the bucket; showing the last one", "key", blobstore.PushConfigKey)
	case v != cur.Version:
		s.Config.Store(NewPushConfig(c, v))
		s.Log.Info("push config reloaded", "servers", len(c.Servers))
	}
}

// MaxConfigBody bounds a PUT or posted push config: the bucket's bound on
// every document.
const MaxConfigBody = blobstore.MaxDocumentSize
