// Package ops is what pushui does, for its pages and its API alike: one
// Service that holds the view of the bucket (internal/fleetview), the push
// config in force, the rollout driver (internal/rollout) and the one path
// that changes desired state (internal/fleet), and keeps the view in step
// with every write it makes.
//
// The pages and the API each parse their own input (a form, a JSON body)
// and call the same Service methods: a deploy, a promote, a group's
// deploy, an edit at the version a page was rendered from. Their errors
// are of a few kinds, which both answer with the same status codes: input
// the user can fix (*InputError, 400), ErrUnknown (404), a conflict
// (blobstore.ErrConflict, 412), ErrBrokenManifest and ErrState (409). A
// Service is safe for concurrent use.
package ops
