package nudge

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	compute "google.golang.org/api/compute/v1"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/pushpull/pushpull/internal/backoff"
	"github.com/pushpull/pushpull/manifest"
)

// PushrevKey is the instance metadata key the GCE form sets; pulld's
// -nudge gce waits on instance/attributes/pushrev (WatchGCE).
const PushrevKey = "pushrev"

// GroupPushrevKey is the project metadata key the GCE form sets to nudge
// group: pushrev-group-{group}, with a "." of the name as "_" (metadata
// keys are letters, digits, "-" and "_"; two groups that differ only so
// share a key, which costs their members a spurious poll). Every instance
// of the project sees project metadata, so one change reaches every member;
// pulld -nudge gce waits on project/attributes/{key} for each of its
// groups (WatchGCEProject).
func GroupPushrevKey(group string) string {
	return PushrevKey + "-" + strings.ReplaceAll(Address(manifest.Group(group)), ".", "_")
}

// gceAttempts bounds the get + setMetadata rounds of one GCE nudge: each
// round after the first follows a 412, someone else having changed the
// instance's metadata between our get and our set.
const gceAttempts = 5

// gceTarget is a parsed Config.GCE: the project and zone of the instances.
type gceTarget struct{ project, zone string }

// project is a project ID (6 to 30 lowercase letters, digits and hyphens,
// starting with a letter and not ending with a hyphen), optionally prefixed
// by the domain of a legacy domain-scoped project ("example.com:my-proj").
// zone is a zone name such as us-central1-a.
var (
	projectRE  = regexp.MustCompile(`^(?:[a-z0-9][a-z0-9.-]*[a-z0-9]:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$`)
	zoneRE     = regexp.MustCompile(`^[a-z][a-z0-9-]{0,61}[a-z0-9]$`)
	instanceRE = regexp.MustCompile(`^[a-z](?:[a-z0-9-]{0,61}[a-z0-9])?$`)
)

// parseGCE parses a Config.GCE value, PROJECT/ZONE. The errors name the
// value and say what is wrong with it, on one line.
func parseGCE(s string) (gceTarget, error) {
	bad := func(why string) (gceTarget, error) {
		return gceTarget{}, fmt.Errorf("nudge: GCE %q: %s", s, why)
	}
	project, zone, ok := strings.Cut(s, "/")
	switch {
	case !ok || strings.Contains(zone, "/"):
		return bad("want PROJECT/ZONE, such as my-project/us-central1-a")
	case !projectRE.MatchString(project):
		return bad(fmt.Sprintf("project %q is not a project ID (6-30 lowercase letters, digits and hyphens, starting with a letter)", project))
	case !zoneRE.MatchString(zone):
		return bad(fmt.Sprintf("zone %q is not a zone name such as us-central1-a", zone))
	}
	return gceTarget{project: project, zone: zone}, nil
}

// newComputeService opens the Compute API client for the GCE form: at
// endpoint without authentication when endpoint is set (a test server),
// else at compute.googleapis.com with Application Default Credentials.
func newComputeService(ctx context.Context, endpoint string) (*compute.Service, error) {
	if endpoint == "" {
		s, err := compute.NewService(ctx)
		if err != nil {
			return nil, fmt.Errorf("nudge: gce: %w", err)
		}
		return s, nil
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("nudge: GCE endpoint %q: want an http:// or https:// URL", endpoint)
	}
	if !strings.HasSuffix(endpoint, "/") {
		// The client resolves paths relative to it: without the slash, its
		// last element would be dropped.
		endpoint += "/"
	}
	s, err := compute.NewService(ctx, option.WithEndpoint(endpoint), option.WithoutAuthentication())
	if err != nil {
		return nil, fmt.Errorf("nudge: gce: %w", err)
	}
	return s, nil
}

// newPushrev returns a fresh pushrev value: the time in nanoseconds and 16
// random hex digits, so two nudges never set the same value, even from two
// machines in the same nanosecond.
func newPushrev(now time.Time) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strconv.FormatInt(now.UnixNano(), 10) + "-" + hex.EncodeToString(b[:])
}

// gceSend is the GCE form's send: an instance's pushrev for a server, the
// project's GroupPushrevKey for a group.
func (n *Nudger) gceSend(ctx context.Context, t manifest.Target, _ time.Duration) error {
	if t.IsGroup() {
		return n.setProjectPushrev(ctx, t.Name)
	}
	return n.setPushrev(ctx, t.Name)
}

// setProjectPushrev nudges every member of group by setting the project
// metadata item GroupPushrevKey(group) to a fresh value, keeping every
// other item, conditionally on the fingerprint read (retried on 412, as
// setPushrev).
func (n *Nudger) setProjectPushrev(ctx context.Context, group string) error {
	key, value := GroupPushrevKey(group), newPushrev(time.Now())
	return n.retryStale(ctx, "group "+group, func() error { return n.trySetProjectPushrev(ctx, key, value) })
}

// retryStale runs try, a read and a conditional set of metadata, again
// while GCE answers 412 (someone else changed the metadata between the
// read and the set), gceAttempts times in all with a little jitter, so
// that two nudgers racing on one item do not keep colliding. what names
// the nudge in errors.
func (n *Nudger) retryStale(ctx context.Context, what string, try func() error) error {
	var err error
	for attempt := 1; attempt <= gceAttempts; attempt++ {
		if attempt > 1 {
			n.log.Debug("metadata changed meanwhile, trying again", "nudge", what, "attempt", attempt)
			if serr := backoff.Sleep(ctx, backoff.Jitter(backoff.Delay(attempt-1, 30*time.Millisecond, 0))); serr != nil {
				return fmt.Errorf("nudge %s: gce: %w (after: %w)", what, serr, err)
			}
		}
		if err = try(); err == nil || !isStale(err) {
			break
		}
	}
	switch {
	case err == nil:
		return nil
	case isStale(err):
		return fmt.Errorf("nudge %s: gce: metadata changed under us %d times: %w", what, gceAttempts, err)
	}
	return fmt.Errorf("nudge %s: gce: %w", what, err)
}

func (n *Nudger) trySetProjectPushrev(ctx context.Context, key, value string) error {
	p, err := n.compute.Projects.Get(n.gce.project).Fields("commonInstanceMetadata").Context(ctx).Do()
	if err != nil {
		return fmt.Errorf("get project %s: %w", n.gce.project, err)
	}
	op, err := n.compute.Projects.SetCommonInstanceMetadata(n.gce.project, withItem(p.CommonInstanceMetadata, key, value)).Context(ctx).Do()
	if err != nil {
		return fmt.Errorf("set project metadata: %w", err)
	}
	return opError(op)
}

// withItem returns md (which may be nil) with key set to value, keeping its
// fingerprint and every other item.
func withItem(md *compute.Metadata, key, value string) *compute.Metadata {
	out := &compute.Metadata{}
	if md != nil {
		out.Fingerprint = md.Fingerprint
		out.Items = md.Items
	}
	v := value
	for i, it := range out.Items {
		if it != nil && it.Key == key {
			out.Items[i] = &compute.MetadataItems{Key: key, Value: &v}
			return out
		}
	}
	out.Items = append(out.Items, &compute.MetadataItems{Key: key, Value: &v})
	return out
}

// opError is the error of a finished Operation, nil when it has none.
func opError(op *compute.Operation) error {
	if op.Error != nil && len(op.Error.Errors) > 0 {
		var msgs []string
		for _, e := range op.Error.Errors {
			msgs = append(msgs, e.Code+": "+e.Message)
		}
		return fmt.Errorf("operation %s failed: %s", op.Name, strings.Join(msgs, "; "))
	}
	return nil
}

// setPushrev nudges server, a GCE instance in n.gce's project and zone, by
// setting its metadata item pushrev to a fresh value and keeping every
// other item. The change is conditional on the metadata fingerprint read
// just before; when GCE answers 412 (someone changed the metadata
// meanwhile) it reads and tries again, gceAttempts times in all. It
// returns once GCE accepted the change, without waiting for the operation
// to finish: the instance sees the value within seconds.
func (n *Nudger) setPushrev(ctx context.Context, server string) error {
	if !instanceRE.MatchString(server) {
		return fmt.Errorf("nudge %s: gce: not a GCE instance name (1-63 lowercase letters, digits and hyphens, starting with a letter)", server)
	}
	value := newPushrev(time.Now())
	return n.retryStale(ctx, server, func() error { return n.trySetPushrev(ctx, server, value) })
}

// trySetPushrev reads the instance's metadata and sets pushrev to value
// under the fingerprint read.
func (n *Nudger) trySetPushrev(ctx context.Context, server, value string) error {
	inst, err := n.compute.Instances.Get(n.gce.project, n.gce.zone, server).Fields("metadata").Context(ctx).Do()
	if err != nil {
		return fmt.Errorf("get instance %s/%s/%s: %w", n.gce.project, n.gce.zone, server, err)
	}
	op, err := n.compute.Instances.SetMetadata(n.gce.project, n.gce.zone, server, withItem(inst.Metadata, PushrevKey, value)).Context(ctx).Do()
	if err != nil {
		return fmt.Errorf("set metadata: %w", err)
	}
	if err := opError(op); err != nil {
		return fmt.Errorf("set metadata: %w", err)
	}
	return nil
}

// isStale reports whether err is GCE's 412: the fingerprint sent is not
// the current one.
func isStale(err error) bool {
	var gerr *googleapi.Error
	return errors.As(err, &gerr) && gerr.Code == http.StatusPreconditionFailed
}
