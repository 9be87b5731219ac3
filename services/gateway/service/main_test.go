package service_test

import (
	"testing"

	"github.com/gaia-platform/gaia/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
