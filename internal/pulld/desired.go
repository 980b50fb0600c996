package pulld

import (
	"context"
	"errors"
	"fmt"

	"github.com/pushpull/pushpull/blobstore"
	"github.com/pushpull/pushpull/manifest"
)

// document is one manifest pulld follows: the server's own, or one of its
// groups' (docs/design.md, "Groups"). Its fields are the loop's.
type document struct {
	target  manifest.Target
	loaded  bool               // a read has completed
	seen    blobstore.Version  // version last read, valid or not; "" = absent
	m       *manifest.Manifest // last valid manifest read; nil while absent
	version blobstore.Version  // m's version
	invalid error              // set while the newest version is invalid
}

// newDocuments returns the documents of server and its groups, the
// server's first.
func newDocuments(server string, groups []string) []*document {
	docs := []*document{{target: manifest.Server(server)}}
	for _, g := range groups {
		docs = append(docs, &document{target: manifest.Group(g)})
	}
	return docs
}

// refresh returns the desired state to act on, reading each document whose
// version changed since it was last read: one conditional request per
// document per poll, and a body only when it changed. It fails when a
// document cannot be read (counted as a bucket error and backed off) or is
// invalid, or when the host has no groups and no manifest while envs are
// installed; in each case nothing is touched, and the reason is kept in
// d.manifestErr for status.
func (d *daemon) refresh(ctx context.Context) (manifest.Desired, error) {
	bctx, cancel := context.WithTimeout(ctx, bucketTimeout)
	defer cancel()
	var err error
	for _, doc := range d.docs {
		if err = d.poll(bctx, doc); err != nil {
			err = fmt.Errorf("read manifest of %s: %w", doc.target, err)
			break
		}
	}
	if err != nil {
		d.bucketFails++
		d.met.bucketErrors.Inc()
		d.manifestErr = err.Error()
		d.log.Error("read manifest failed; services keep running", "err", err, "failures", d.bucketFails)
		return manifest.Desired{}, err
	}
	if d.bucketFails > 0 {
		d.log.Info("manifest readable again", "after_failures", d.bucketFails)
	}
	d.bucketFails = 0
	var sources []manifest.Source
	for _, doc := range d.docs {
		if doc.invalid != nil {
			d.manifestErr = doc.invalid.Error()
			return manifest.Desired{}, doc.invalid
		}
		sources = append(sources, manifest.Source{Target: doc.target, Manifest: doc.m})
	}
	d.manifestErr = ""
	if len(d.docs) == 1 && d.docs[0].seen == "" {
		installed, err := d.eng.Installed()
		if err != nil {
			d.manifestErr = err.Error()
			return manifest.Desired{}, err
		}
		if len(installed) > 0 {
			err := fmt.Errorf("%w at servers/%s.json: %d installed envs are left as they are", errNoManifest, d.cfg.Server, len(installed))
			d.manifestErr = err.Error()
			return manifest.Desired{}, err
		}
	}
	desired := manifest.Merge(sources)
	d.forgetRetries(desired)
	d.desired = desired
	return desired, nil
}

// poll reads doc when its version changed since it was last read, or was
// never read. An invalid manifest is remembered in doc.invalid with its
// version, so it is not read again until it changes; doc.m keeps the last
// valid one but is not acted on meanwhile. A read error changes nothing.
func (d *daemon) poll(ctx context.Context, doc *document) error {
	changed, _, err := d.store.ChangedManifest(ctx, doc.target, doc.seen)
	if err != nil || (!changed && doc.loaded) {
		return err
	}
	m, v, err := d.store.ReadManifest(ctx, doc.target)
	if errors.Is(err, manifest.ErrInvalidManifest) {
		d.log.Error("manifest invalid; nothing is changed until it is fixed", string(doc.target.Kind), doc.target.Name, "version", string(v), "err", err)
		doc.loaded, doc.seen, doc.invalid = true, v, err
		return nil
	}
	if err != nil {
		return err
	}
	doc.loaded, doc.seen, doc.invalid = true, v, nil
	if v == "" {
		doc.m, doc.version = nil, ""
		return nil
	}
	d.log.Info("manifest read", string(doc.target.Kind), doc.target.Name, "revision", m.Revision, "version", string(v), "envs", len(m.Packages))
	doc.m, doc.version = m, v
	if !doc.target.IsGroup() {
		d.met.manifestRevision.Set(float64(m.Revision))
	}
	return nil
}

// forgetRetries drops the retry schedule of every env whose entry changed
// since the last desired state: a changed entry is tried at once.
func (d *daemon) forgetRetries(next manifest.Desired) {
	for _, e := range next.Entries {
		rec := d.envs[e.EnvName()]
		if rec == nil || rec.retry == nil {
			continue
		}
		if old, ok := d.desired.Manifest().Lookup(e.EnvName()); !ok || entryKey(old) != entryKey(e) {
			rec.retry = nil
		}
	}
}
