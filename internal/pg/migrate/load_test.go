package migrate_test

import (
	"strings"
	"testing"
	"testing/fstest"

	"github.com/gaia-platform/gaia/internal/pg/migrate"
)

func TestLoadSortsAndReadsFiles(t *testing.T) {
	files := fstest.MapFS{
		"0002_add_index.sql":    {Data: []byte("-- gaia:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS t_a ON t (a);\n")},
		"0001_init.sql":         {Data: []byte("CREATE TABLE t (a int);\n")},
		"0010_later.sql":        {Data: []byte("  -- gaia:no-transaction  \r\nSELECT 1;")},
		"0003_comment_late.sql": {Data: []byte("SELECT 1;\n-- gaia:no-transaction\n")},
		"README.md":             {Data: []byte("not a migration")},
		"old/0001_init.sql":     {Data: []byte("ignored: only the root is read")},
	}
	got, err := migrate.Load(files)
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		version int
		name    string
		file    string
		noTx    bool
	}{
		{1, "init", "0001_init.sql", false},
		{2, "add_index", "0002_add_index.sql", true},
		{3, "comment_late", "0003_comment_late.sql", false},
		{10, "later", "0010_later.sql", true},
	}
	if len(got) != len(want) {
		t.Fatalf("Load returned %d migrations, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		m := got[i]
		if m.Version != w.version || m.Name != w.name || m.File() != w.file || m.NoTx != w.noTx {
			t.Errorf("migration %d = {%d %q %q noTx=%v}, want {%d %q %q noTx=%v}",
				i, m.Version, m.Name, m.File(), m.NoTx, w.version, w.name, w.file, w.noTx)
		}
		if m.SQL != string(files[w.file].Data) {
			t.Errorf("%s: SQL = %q, want the file's content", w.file, m.SQL)
		}
		if len(m.Checksum) != 64 {
			t.Errorf("%s: Checksum = %q, want a hex SHA-256", w.file, m.Checksum)
		}
	}
}

func TestLoadChecksumFollowsContent(t *testing.T) {
	load := func(sql string) string {
		t.Helper()
		ms, err := migrate.Load(fstest.MapFS{"0001_init.sql": {Data: []byte(sql)}})
		if err != nil {
			t.Fatal(err)
		}
		return ms[0].Checksum
	}
	first, again := load("SELECT 1;"), load("SELECT 1;")
	if first != again {
		t.Error("the same content gave different checksums")
	}
	if first == load("SELECT 2;") {
		t.Error("different content gave the same checksum")
	}
}

func TestLoadRejects(t *testing.T) {
	tests := []struct {
		name     string
		files    fstest.MapFS
		wantFile string // the error must name it
		wantText string
	}{
		{"too few digits", fstest.MapFS{"1_init.sql": {Data: []byte("SELECT 1;")}}, "1_init.sql", "0001_create_tasks.sql"},
		{"dash separator", fstest.MapFS{"0001-init.sql": {Data: []byte("SELECT 1;")}}, "0001-init.sql", "name must look like"},
		{"uppercase name", fstest.MapFS{"0001_Init.sql": {Data: []byte("SELECT 1;")}}, "0001_Init.sql", "name must look like"},
		{"no name", fstest.MapFS{"0001.sql": {Data: []byte("SELECT 1;")}}, "0001.sql", "name must look like"},
		{"letters for version", fstest.MapFS{"abcd_init.sql": {Data: []byte("SELECT 1;")}}, "abcd_init.sql", "name must look like"},
		{"version zero", fstest.MapFS{"0000_init.sql": {Data: []byte("SELECT 1;")}}, "0000_init.sql", "from 0001"},
		{"extra leading zero", fstest.MapFS{"00001_init.sql": {Data: []byte("SELECT 1;")}}, "00001_init.sql", "0001"},
		{"duplicate version", fstest.MapFS{
			"0001_init.sql":  {Data: []byte("SELECT 1;")},
			"0001_other.sql": {Data: []byte("SELECT 2;")},
		}, "0001_other.sql", "same version"},
		{"empty file", fstest.MapFS{"0001_init.sql": {Data: []byte(" \n\t")}}, "0001_init.sql", "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := migrate.Load(tt.files)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tt.wantFile) || !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Load error %q, want it to name %q and say %q", err, tt.wantFile, tt.wantText)
			}
		})
	}
}
