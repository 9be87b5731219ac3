package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/gaia-platform/gaia/internal/buildinfo"
)

func newVersionCommand() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print which build of gaia this is",
		RunE: func(cmd *cobra.Command, _ []string) error {
			info := buildinfo.Read()
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), info)
			}
			commit := info.Commit
			if commit == "" {
				commit = "unknown commit"
			} else if len(commit) > 12 {
				commit = commit[:12]
			}
			if info.Modified {
				commit += ", modified"
			}
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "gaia %s (%s, %s)\n", info.Version, commit, info.GoVersion)
			return err
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
