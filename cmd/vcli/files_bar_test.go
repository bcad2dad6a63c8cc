package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestTransferBarShowsOnlyOnATerminalAfterASecond(t *testing.T) {
	var stderr bytes.Buffer
	a := &app{stderr: &stderr}
	if b := a.newBar("put x", 1000); b.enabled {
		t.Fatal("a bar is enabled for a stderr that is not a terminal")
	}
	devnull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devnull.Close()
	a.stderr = devnull
	if b := a.newBar("put x", 1000); b.enabled {
		t.Fatal("a bar is enabled for /dev/null")
	}

	// What the bar draws, once enabled: nothing during the first second,
	// then the description and the bytes.
	a.stderr = &stderr
	b := &transferBar{a: a, desc: "put big.bin", total: 10 << 20, start: time.Now(), enabled: true}
	b.set(1 << 20)
	if stderr.Len() != 0 {
		t.Fatalf("the bar drew within its first second: %q", stderr.String())
	}
	b.start = time.Now().Add(-2 * time.Second)
	b.set(5 << 20)
	b.finish()
	if out := stderr.String(); !strings.Contains(out, "put big.bin") || !strings.Contains(out, "MB") {
		t.Errorf("the bar drew %q, want the description and a byte count", out)
	}
}
