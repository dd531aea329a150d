// Package registrytest holds helpers for testing code that reads plugin
// registries, for the registry packages' tests and for the CLI's end-to-end
// tests alike (the registry's fixture builders are internal; these are not).
package registrytest
