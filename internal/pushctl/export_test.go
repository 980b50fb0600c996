package pushctl

// Display is display, for the package's tests.
var Display = display
