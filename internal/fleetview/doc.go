// Package fleetview is what the fleet looks like to pushui: the bucket's
// documents held in memory (View: every server's manifest and status,
// every group's manifest, every app's package names, package metadata
// kept forever because packages are immutable) and the view models built
// from a snapshot of it (State) — a server's envs desired against actual
// (BuildServer), a group with its members (BuildGroup, Summaries), a
// rollout with the members on each side (BuildRollout), the history of a
// manifest with what the hosts did with each change (View.History).
//
// The pages (internal/pushui/web) and the JSON API (internal/pushui/api)
// read from it alike, so that they cannot disagree. It knows nothing of
// HTTP: its tests build a State or a View over a bucket and look at the
// models. A View is safe for concurrent use; a State, once published, is
// never modified, so readers hold one without locks.
package fleetview
