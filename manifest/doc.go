// Package manifest defines pushpull's data formats: names, package names and
// their metadata, per-server manifests, the status document pulld reports,
// the push configuration pushui enforces, and audit records.
//
// It is pure data: nothing here does I/O. Every parser is strict, so a host
// never acts on a document it could not fully understand, and every error
// names the entry at fault. Encoders are canonical: decoding canonical bytes
// and encoding them again gives the same bytes.
//
// docs/design.md ("Documents") says why the formats are what they are.
package manifest
