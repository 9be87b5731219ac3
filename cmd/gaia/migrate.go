package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"go.uber.org/zap"

	"github.com/gaia-platform/gaia/internal/config"
	"github.com/gaia-platform/gaia/internal/pg"
	"github.com/gaia-platform/gaia/internal/pg/migrate"
	"github.com/gaia-platform/gaia/migrations"
)

type migrationReport struct {
	Schema  string   `json:"schema"`
	Applied []string `json:"applied"`
	Pending []string `json:"pending,omitempty"`
}

func newMigrateCommand() *cobra.Command {
	var asJSON, status bool
	var only []string
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Create the database if needed and apply every service's migrations",
		Long: `Applies the embedded migrations of taskqueue, metrics and dashboard to the
PostgreSQL database in DATABASE_URL (default ` + pg.DefaultURL + `),
creating that database first if it does not exist. Services also migrate their
own schema when they start; this command does it ahead of a deployment.
With --status, nothing is applied: the command lists applied and pending
migrations. --schema limits it to some schemas (a Kubernetes Job per schema
runs gaia migrate --schema taskqueue).`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			schemas, err := pickSchemas(only)
			if err != nil {
				return err
			}
			loader := config.NewLoader(os.LookupEnv)
			url := pg.URL(loader, "DATABASE_URL", pg.DefaultURL)
			if err := loader.Err(); err != nil {
				return configError{err}
			}
			ctx, cancel := context.WithTimeout(cmd.Context(), 2*time.Minute)
			defer cancel()
			if !status {
				if _, err := pg.EnsureDatabase(ctx, url); err != nil {
					return err
				}
			}
			pool, err := pg.Connect(ctx, url, zap.NewNop())
			if err != nil {
				return err
			}
			defer pool.Close()

			var reports []migrationReport
			for _, schema := range schemas {
				files, err := migrations.For(schema)
				if err != nil {
					return err
				}
				rep := migrationReport{Schema: schema, Applied: []string{}}
				if status {
					applied, pending, err := migrate.Status(ctx, pool, schema, files)
					if err != nil {
						return fmt.Errorf("%s: %w", schema, err)
					}
					for _, a := range applied {
						rep.Applied = append(rep.Applied, fmt.Sprintf("%04d_%s", a.Version, a.Name))
					}
					for _, p := range pending {
						rep.Pending = append(rep.Pending, fmt.Sprintf("%04d_%s", p.Version, p.Name))
					}
				} else {
					applied, err := migrate.Up(ctx, pool, schema, files, zap.NewNop())
					if err != nil {
						return fmt.Errorf("%s: %w", schema, err)
					}
					for _, a := range applied {
						rep.Applied = append(rep.Applied, fmt.Sprintf("%04d_%s", a.Version, a.Name))
					}
				}
				reports = append(reports, rep)
			}
			if asJSON {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"database": pg.Redact(url), "schemas": reports})
			}
			return printMigrations(cmd, url, status, reports)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().BoolVar(&status, "status", false, "list applied and pending migrations without applying any")
	cmd.Flags().StringSliceVar(&only, "schema", nil, "only these schemas ("+strings.Join(migrations.Contexts, ", ")+"); repeat or comma-separate")
	return cmd
}

// pickSchemas is every schema, or those named, each checked.
func pickSchemas(only []string) ([]string, error) {
	if len(only) == 0 {
		return migrations.Contexts, nil
	}
	for _, s := range only {
		if !slices.Contains(migrations.Contexts, s) {
			return nil, usageError{fmt.Errorf("--schema %q: expected one of %s", s, strings.Join(migrations.Contexts, ", "))}
		}
	}
	return only, nil
}

func printMigrations(cmd *cobra.Command, url string, status bool, reports []migrationReport) error {
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Database %s\n", pg.Redact(url))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, r := range reports {
		switch {
		case status:
			fmt.Fprintf(tw, "  %s\t%d applied\t%d pending\t%s\n", r.Schema, len(r.Applied), len(r.Pending), joinOrDash(r.Pending))
		case len(r.Applied) == 0:
			fmt.Fprintf(tw, "  %s\tup to date\n", r.Schema)
		default:
			fmt.Fprintf(tw, "  %s\tapplied %s\n", r.Schema, joinOrDash(r.Applied))
		}
	}
	return tw.Flush()
}

func joinOrDash(names []string) string {
	if len(names) == 0 {
		return "-"
	}
	s := names[0]
	for _, n := range names[1:] {
		s += ", " + n
	}
	return s
}
