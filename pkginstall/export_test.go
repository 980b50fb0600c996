package pkginstall

// SetCrashHook sets the function called right after each write a crash
// could follow (see crashHook); nil removes it.
func SetCrashHook(f func(point string)) { crashHook = f }
