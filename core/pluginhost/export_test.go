package pluginhost

import "time"

// SetRacyAge sets how old a binary's last change must be for its identity
// to stand for its content, and returns the function that restores it.
func SetRacyAge(d time.Duration) (restore func()) {
	old := racyAge
	racyAge = d
	return func() { racyAge = old }
}

// Hashes is how many times this process has hashed a plugin binary.
func Hashes() int {
	executables.mu.Lock()
	defer executables.mu.Unlock()
	return executables.hashes
}

// Holds reports whether the plugin host holds the binary at path open.
func Holds(path string) bool {
	executables.mu.Lock()
	defer executables.mu.Unlock()
	return executables.held[path] != nil
}
