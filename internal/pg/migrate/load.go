package migrate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// noTransactionMarker, as a migration's first line, makes it run outside a
// transaction.
const noTransactionMarker = "-- gaia:no-transaction"

// fileName is the only accepted shape; the version is written with at least
// four digits and no more leading zeros than that needs, so each version has
// exactly one spelling and File can rebuild the name.
var fileName = regexp.MustCompile(`^([0-9]{4,})_([a-z0-9_]+)\.sql$`)

// Migration is one SQL file.
type Migration struct {
	Version  int
	Name     string // the part of the file name after the version, e.g. "init"
	SQL      string
	Checksum string // hex SHA-256 of SQL, to notice an applied file being edited
	NoTx     bool
}

// File is the name of the file the migration was loaded from.
func (m Migration) File() string {
	return fmt.Sprintf("%04d_%s.sql", m.Version, m.Name)
}

// Load reads the migrations at the root of files, sorted by version. Files
// that do not end in .sql and directories are ignored; a .sql file with a bad
// name, an empty one, or two files with the same version are errors naming
// the files.
func Load(files fs.FS) ([]Migration, error) {
	entries, err := fs.ReadDir(files, ".")
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var migrations []Migration
	byVersion := make(map[int]string)
	for _, entry := range entries {
		if entry.IsDir() || path.Ext(entry.Name()) != ".sql" {
			continue
		}
		m, err := parseName(entry.Name())
		if err != nil {
			return nil, err
		}
		if other, dup := byVersion[m.Version]; dup {
			return nil, fmt.Errorf("migrations %s and %s have the same version %d", other, entry.Name(), m.Version)
		}
		byVersion[m.Version] = entry.Name()

		body, err := fs.ReadFile(files, entry.Name())
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", entry.Name(), err)
		}
		if strings.TrimSpace(string(body)) == "" {
			return nil, fmt.Errorf("migration %s is empty", entry.Name())
		}
		sum := sha256.Sum256(body)
		m.SQL = string(body)
		m.Checksum = hex.EncodeToString(sum[:])
		m.NoTx = firstLine(m.SQL) == noTransactionMarker
		migrations = append(migrations, m)
	}
	slices.SortFunc(migrations, func(a, b Migration) int { return a.Version - b.Version })
	return migrations, nil
}

func parseName(name string) (Migration, error) {
	match := fileName.FindStringSubmatch(name)
	if match == nil {
		return Migration{}, fmt.Errorf("migration file %s: name must look like 0001_create_tasks.sql (version digits, underscore, lowercase letters, digits and underscores)", name)
	}
	version, err := strconv.Atoi(match[1])
	if err != nil || version == 0 {
		return Migration{}, fmt.Errorf("migration file %s: version must be a number from 0001 up", name)
	}
	m := Migration{Version: version, Name: match[2]}
	if m.File() != name {
		return Migration{}, fmt.Errorf("migration file %s: write its version as %04d, without extra leading zeros", name, version)
	}
	return m, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return strings.TrimSpace(line)
}
