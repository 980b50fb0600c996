package blobstore

// WriteManifest is writeManifest, for the package's own tests of the
// mechanism under UpdateManifest.
var WriteManifest = (*Store).writeManifest
