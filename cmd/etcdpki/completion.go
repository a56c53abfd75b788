package main

import (
	_ "embed"
	"fmt"

	"github.com/etcdpki/etcdpki/internal/input"
	"github.com/urfave/cli/v2"
)

// The scripts speak urfave/cli v2's completion protocol (App
// EnableBashCompletion: the program answers --generate-bash-completion
// with the candidates). urfave ships them in its repository's
// autocomplete/ directory, which Go cannot embed from another module, so
// they are kept here, adapted to this one program.
var (
	//go:embed completion/etcdpki.bash
	bashCompletion string
	//go:embed completion/etcdpki.zsh
	zshCompletion string
)

// completionScripts maps each shell to its script.
var completionScripts = map[string]string{"bash": bashCompletion, "zsh": zshCompletion}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash or zsh",
		ArgsUsage: "bash|zsh",
		Description: "bash: source <(etcdpki completion bash), or save it as /etc/bash_completion.d/etcdpki\n" +
			"zsh:  source <(etcdpki completion zsh) in ~/.zshrc, after compinit",
		// The candidates for `etcdpki completion <TAB>`.
		BashComplete: func(c *cli.Context) {
			for _, shell := range []string{"bash", "zsh"} {
				fmt.Fprintln(c.App.Writer, shell)
			}
		},
		Action: func(c *cli.Context) error {
			if c.Args().Len() != 1 {
				return input.Errorf("completion: give one shell: bash or zsh")
			}
			script, ok := completionScripts[c.Args().First()]
			if !ok {
				return input.Errorf("completion: unknown shell %q (bash or zsh)", c.Args().First())
			}
			_, err := fmt.Fprint(c.App.Writer, script)
			return err
		},
	}
}
