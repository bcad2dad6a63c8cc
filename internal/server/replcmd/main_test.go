package replcmd_test

import (
	"os"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
)

// TestMain removes the vserv and vcli binaries testenv built for this run.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
