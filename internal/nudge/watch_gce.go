package nudge

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"cloud.google.com/go/compute/metadata"

	"github.com/pushpull/pushpull/internal/backoff"
)

// errAppeared ends a wait on the attribute directory.
var errAppeared = errors.New("attribute appeared")

// WatchGCE nudges whenever the instance metadata attribute attr changes value.
// It holds one hanging GET open on
// instance/attributes/{attr}?wait_for_change=true&last_etag=… through
// cloud.google.com/go/compute/metadata, which talks to GCE_METADATA_HOST
// when that is set and to the metadata server of the VM otherwise.
//
// The attribute's value at start is not a nudge (pulld reconciles on start
// anyway), but a value that differs from the last one seen when a broken
// wait is re-established is. While the attribute does not exist, GCE waits
// on the attribute directory instead and nudges when it appears; deleting
// the attribute is not a nudge. Errors are logged and retried with backoff.
// WatchGCE returns ctx.Err() when ctx ends, and an error at once for an
// invalid attr. pulld watches PushrevKey, which the GCE form sets.
func WatchGCE(ctx context.Context, attr string, h Hooks) error {
	return watchAttribute(ctx, "instance/attributes/", attr, h)
}

// WatchGCEProject is WatchGCE for the project metadata attribute attr
// (project/attributes/{attr}), which every instance of the project sees:
// pulld watches GroupPushrevKey of each of its groups, which the GCE form
// sets to nudge a group with one change.
func WatchGCEProject(ctx context.Context, attr string, h Hooks) error {
	return watchAttribute(ctx, "project/attributes/", attr, h)
}

// watchAttribute is WatchGCE on the attribute directory dir.
func watchAttribute(ctx context.Context, dir, attr string, h Hooks) error {
	if attr == "" || strings.ContainsAny(attr, "/?&#") {
		return fmt.Errorf("nudge: watch gce: invalid attribute name %q", attr)
	}
	log := h.logger().With("source", "gce", "attribute", dir+attr)
	c := metadata.NewWithOptions(&metadata.Options{Logger: log})
	suffix := dir + attr
	// last is the value last seen and known says whether there is one. A
	// re-established subscription whose first value differs from it nudges:
	// the change happened while nobody was waiting.
	var last string
	known, appeared := false, false
	for fails := 0; ; {
		first := true
		err := c.SubscribeWithContext(ctx, suffix, func(_ context.Context, v string, ok bool) error {
			fails = 0
			if !ok {
				return nil // deleted: Subscribe returns nil, and we wait for it to reappear
			}
			if first {
				first = false
				h.ready()
				if !appeared && (!known || v == last) {
					last, known = v, true
					return nil
				}
				appeared = false
			}
			last, known = v, true
			h.Nudge()
			return nil
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var absent metadata.NotDefinedError
		if err == nil || errors.As(err, &absent) {
			// Absent or just deleted: wait for it to (re)appear. The
			// subscription that follows reads its first value after it
			// appeared and nudges for it.
			var werr error
			appeared, werr = waitAppear(ctx, c, dir, attr, h)
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if appeared {
				fails = 0
				continue
			}
			err = werr
			if err == nil {
				err = errors.New("wait on the attribute directory ended")
			}
		}
		log.Warn("metadata watch failed", "err", err, "retry", fails+1)
		if backoff.Sleep(ctx, retryDelay(fails)) != nil {
			return ctx.Err()
		}
		fails++
	}
}

// waitAppear waits on the attribute directory dir until attr is listed.
// It reports whether attr appeared after the wait started (true, nil), was
// there at once (true, nil), or the wait failed.
func waitAppear(ctx context.Context, c *metadata.Client, dir, attr string, h Hooks) (bool, error) {
	first := true
	err := c.SubscribeWithContext(ctx, dir, func(_ context.Context, v string, ok bool) error {
		if first {
			first = false
			h.ready()
		}
		if ok && slices.Contains(strings.Fields(v), attr) {
			return errAppeared
		}
		return nil
	})
	if errors.Is(err, errAppeared) {
		return true, nil
	}
	return false, err
}
