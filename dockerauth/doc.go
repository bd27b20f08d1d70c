// Package dockerauth decides which registry credential a pull uses, with the docker
// executor's precedence (first source with a matching entry wins) and its matching
// (normalize the image, then walk up its path to the registry host).
//
// It must never log or put a password or token in an error; callers learn only
// which source matched.
package dockerauth
