// Package dockerauth decides which registry credential a pull uses, with the docker
// executor's precedence (DOCKER_AUTH_CONFIG, the manager's config.json, the job's
// credentials[]; the first source with a matching entry wins) and its matching
// (normalize the image, then walk up its path to the registry host). Inside a config,
// credHelpers beat credsStore beat auths; helpers run on the manager with a timeout.
// ECR images no source covers get a token from the manager's identity (cached 0600
// until shortly before expiry) or from the worker's credential helper. Image-prefix
// rewrites live here too: they are image-reference work.
//
// It must never log or put a password or token in an error; callers learn only
// which source matched.
package dockerauth
