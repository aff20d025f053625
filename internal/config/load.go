package config

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// ConfigEnv names the environment variable that points at the config file
// when --config is not given.
const ConfigEnv = "SHOAL_CONFIG"

// Flags records the node options given on a command line. Create it with
// RegisterFlags before parsing, then call Load.
type Flags struct {
	configPath string
	// values holds raw flag values by option name, in command-line order.
	values map[string][]string
}

// RegisterFlags defines --config and one flag per option on fs. Bad values
// are reported by fs.Parse, naming the flag.
func RegisterFlags(fs *flag.FlagSet) *Flags {
	f := &Flags{values: map[string][]string{}}
	fs.StringVar(&f.configPath, "config", "", "YAML config file (env "+ConfigEnv+"); keys are the option names below")
	for _, o := range Options() {
		set := func(v string) error {
			var scratch Config
			if err := o.set(&scratch, v); err != nil {
				return err
			}
			f.values[o.Name] = append(f.values[o.Name], v)
			return nil
		}
		if o.Bool {
			fs.BoolFunc(o.Name, o.Help, set)
		} else {
			fs.Func(o.Name, o.Help, set)
		}
	}
	return f
}

// Defaults returns the configuration with every option at its default.
func Defaults() *Config {
	c := &Config{}
	for _, o := range Options() {
		if o.Default == "" {
			continue // the zero value
		}
		if err := o.set(c, o.Default); err != nil {
			panic(fmt.Sprintf("config: default of %s: %v", o.Name, err)) // a bug in the table
		}
	}
	return c
}

// Load layers defaults < config file < environment < flags and validates
// the result. lookupEnv is os.LookupEnv outside tests.
func (f *Flags) Load(lookupEnv func(string) (string, bool)) (*Config, error) {
	c := Defaults()
	path := f.configPath
	if path == "" {
		path, _ = lookupEnv(ConfigEnv)
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: config file: %w", ErrInvalid, err)
		}
		if err := applyYAML(c, data); err != nil {
			return nil, fmt.Errorf("%w: config file %s: %w", ErrInvalid, path, err)
		}
	}
	for _, o := range Options() {
		v, ok := lookupEnv(o.Env())
		if !ok {
			continue
		}
		o.reset(c)
		if err := o.set(c, v); err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInvalid, o.Env(), err)
		}
	}
	for _, o := range Options() {
		vs, ok := f.values[o.Name]
		if !ok {
			continue
		}
		o.reset(c)
		for _, v := range vs {
			if err := o.set(c, v); err != nil {
				return nil, fmt.Errorf("%w: --%s: %w", ErrInvalid, o.Name, err)
			}
		}
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// applyYAML sets options from a flat YAML mapping. Unknown and repeated keys
// are errors.
func applyYAML(c *Config, data []byte) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return err
	}
	if len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: want a mapping of option: value", root.Line)
	}
	byName := map[string]Option{}
	for _, o := range Options() {
		byName[o.Name] = o
	}
	seen := map[string]bool{}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		o, ok := byName[k.Value]
		if !ok {
			errs = append(errs, fmt.Errorf("line %d: unknown key %q (see `shoal node --help`)", k.Line, k.Value))
			continue
		}
		if seen[k.Value] {
			errs = append(errs, fmt.Errorf("line %d: key %q repeated", k.Line, k.Value))
			continue
		}
		seen[k.Value] = true
		switch {
		case v.Kind == yaml.ScalarNode:
			o.reset(c)
			val := v.Value
			if v.Tag == "!!null" {
				val = ""
			}
			if err := o.set(c, val); err != nil {
				errs = append(errs, fmt.Errorf("line %d: %s: %w", v.Line, k.Value, err))
			}
		case v.Kind == yaml.SequenceNode && o.List:
			o.reset(c)
			for _, item := range v.Content {
				if item.Kind != yaml.ScalarNode {
					errs = append(errs, fmt.Errorf("line %d: %s: want a list of strings", item.Line, k.Value))
					continue
				}
				if err := o.set(c, item.Value); err != nil {
					errs = append(errs, fmt.Errorf("line %d: %s: %w", item.Line, k.Value, err))
				}
			}
		default:
			errs = append(errs, fmt.Errorf("line %d: %s: want a single value", v.Line, k.Value))
		}
	}
	return errors.Join(errs...)
}

// WriteYAML prints the configuration as a config file would hold it.
func (c *Config) WriteYAML(w io.Writer) error {
	shown := *c
	if shown.GatewaySecretKey != "" {
		shown.GatewaySecretKey = "REDACTED"
	}
	for _, l := range []*[]string{&shown.Immutable, &shown.P2PListen, &shown.Bootstrap, &shown.AllowedHosts} {
		if *l == nil {
			*l = []string{}
		}
	}
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(&shown); err != nil {
		return err
	}
	return enc.Close()
}

// PrintOptions writes the help text of every option: flag, environment
// variable and default.
func PrintOptions(w io.Writer) {
	fmt.Fprintf(w, "  --config FILE\n        YAML config file (env %s); keys are the option names below\n", ConfigEnv)
	for _, o := range Options() {
		name := "--" + o.Name
		if o.Arg != "" {
			name += " " + o.Arg
		}
		def := o.Default
		if def == "" {
			def = "none"
		}
		extra := ""
		if o.List {
			extra = ", repeatable"
		}
		fmt.Fprintf(w, "  %s\n        %s\n        (env %s, default %s%s)\n", name, o.Help, o.Env(), def, extra)
	}
	fmt.Fprintln(w, "\nPrecedence: flag > environment > config file > default.")
	fmt.Fprintln(w, "Sizes: 2GiB, 512MiB, 4MB, or bytes. Durations: Go syntax (30s, 5m, 1h).")
}

// Redacted returns s with the middle hidden, for logs.
func Redacted(s string) string {
	if len(s) <= 4 {
		return strings.Repeat("*", len(s))
	}
	return s[:4] + strings.Repeat("*", 4)
}
