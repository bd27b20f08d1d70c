// Package settings owns the driver's settings file: strict TOML decoding (an unknown
// key is an error naming it), defaults, and Validate, which reports every problem at
// once with its field path so an operator fixes a broken file in one pass.
//
// It must never touch AWS, Docker or the network: `config` validates settings before
// anything is spent.
package settings
