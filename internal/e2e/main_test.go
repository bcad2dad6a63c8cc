package e2e_test

import (
	"os"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
)

// TestMain removes the binaries testenv built for this run.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
