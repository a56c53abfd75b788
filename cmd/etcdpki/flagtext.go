package main

import (
	"github.com/urfave/cli/v2"

	"github.com/etcdpki/etcdpki/cluster"
	"github.com/etcdpki/etcdpki/internal/input"
)

// checkFlagText refuses, before a command runs, every string flag set to
// "" (--dir "" would mean ./pki, --restart= would mean auto: an empty
// value is a mistake, never a choice; an empty --dns or --org is refused
// by its own check) and every flag value or argument
// holding a control character, by the spec's own rule (cluster.CheckText):
// a newline in --dir or --out would inject lines into the files written
// from it.
func checkFlagText(c *cli.Context) error {
	for _, f := range c.Command.Flags {
		names := f.Names()
		name := names[0]
		if !c.IsSet(name) {
			continue
		}
		var values []string
		switch f.(type) {
		case *cli.StringFlag:
			values = []string{c.String(name)}
		case *cli.StringSliceFlag:
			values = c.StringSlice(name)
		default:
			continue
		}
		for _, v := range values {
			if _, ok := f.(*cli.StringFlag); ok && v == "" {
				return input.Errorf("--%s: empty value", name)
			}
			if err := cluster.CheckText(v); err != nil {
				return input.Errorf("--%s %v", name, err)
			}
		}
	}
	for i, a := range c.Args().Slice() {
		if err := cluster.CheckText(a); err != nil {
			return input.Errorf("%s: argument %d: %v", c.Command.FullName(), i+1, err)
		}
	}
	return nil
}

// checkedActions makes checkFlagText run before every command's action,
// and keeps slice flags' values as typed: urfave trims them otherwise,
// and --org ' x' would pass as "x" where the spec refuses " x".
func checkedActions(cmds []*cli.Command) {
	for _, c := range cmds {
		for _, f := range c.Flags {
			if sf, ok := f.(*cli.StringSliceFlag); ok {
				sf.KeepSpace = true
			}
		}
		if action := c.Action; action != nil {
			c.Action = func(ctx *cli.Context) error {
				if err := checkFlagText(ctx); err != nil {
					return err
				}
				return action(ctx)
			}
		}
		checkedActions(c.Subcommands)
	}
}
