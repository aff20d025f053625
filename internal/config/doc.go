// Package config owns the configuration of a `shoal node` process: the
// option table (one entry per option, each with a flag, a SHOAL_* environment
// variable and a YAML key of the same name), the layering
// flag > environment > config file > default, size and duration parsing, and
// validation of the whole before anything starts.
//
// The YAML file is flat: its keys are the flag names without dashes in front
// (`mem-cache: 2GiB`). Unknown keys are an error.
package config
