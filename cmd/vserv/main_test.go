package main

import (
	"os"
	"testing"

	"github.com/vserv/vserv/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
