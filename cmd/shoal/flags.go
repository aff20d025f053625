package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/shoal-cache/shoal/internal/config"
)

// errHelp: --help was asked for and printed; exit 0.
var errHelp = errors.New("help shown")

// loadConfig parses a node command line with the config layering.
func loadConfig(e env, name string, args []string) (*config.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	flags := config.RegisterFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(e.stdout, "Usage: shoal %s [options]\n\nOptions:\n", name)
			config.PrintOptions(e.stdout)
			return nil, errHelp
		}
		return nil, fmt.Errorf("%w: %w (see 'shoal %s --help')", errUsage, err, name)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	c, err := flags.Load(e.lookupEnv)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", errUsage, err)
	}
	return c, nil
}

// cmdConfig prints the effective configuration.
func cmdConfig(e env, args []string) error {
	c, err := loadConfig(e, "config", args)
	if err != nil {
		return err
	}
	return c.WriteYAML(e.stdout)
}
