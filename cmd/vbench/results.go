package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"
)

// result is one reported number.
type result struct {
	what   string
	value  float64
	unit   string
	target string
	note   string
}

func (r result) valueText() string {
	switch {
	case r.value >= 100:
		return fmt.Sprintf("%.0f", r.value)
	case r.value >= 1:
		return fmt.Sprintf("%.2f", r.value)
	}
	return fmt.Sprintf("%.3f", r.value)
}

const (
	beginMarker = "<!-- vbench:begin -->"
	endMarker   = "<!-- vbench:end -->"
)

// writeResults replaces the vbench section of path (between the markers) with
// this run's table, keeping everything else a person wrote there.
func writeResults(path, cmdline string, rs []result) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	var sec bytes.Buffer
	fmt.Fprintln(&sec, beginMarker)
	fmt.Fprintf(&sec, "Latest `make bench` run (written by vbench; do not edit between the markers).\n\n")
	fmt.Fprintf(&sec, "- date: %s\n", time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&sec, "- machine: %s\n", machine())
	fmt.Fprintf(&sec, "- command: `%s`\n\n", cmdline)
	fmt.Fprintln(&sec, "| what | result | unit | target | note |")
	fmt.Fprintln(&sec, "|---|---:|---|---|---|")
	for _, r := range rs {
		fmt.Fprintf(&sec, "| %s | %s | %s | %s | %s |\n", r.what, r.valueText(), r.unit, r.target, r.note)
	}
	fmt.Fprintln(&sec, endMarker)

	text := string(old)
	i, j := strings.Index(text, beginMarker), strings.Index(text, endMarker)
	switch {
	case i >= 0 && j > i:
		text = text[:i] + sec.String() + text[j+len(endMarker)+1:]
	case text == "":
		text = "# Benchmarks\n\n" + sec.String()
	default:
		text = strings.TrimRight(text, "\n") + "\n\n" + sec.String()
	}
	return os.WriteFile(path, []byte(text), 0o644)
}

// machine describes the CPU, core count and memory.
func machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
	}
	return fmt.Sprintf("%s, %d cores%s, %s/%s, %s", cpu, runtime.NumCPU(), mem, runtime.GOOS, runtime.GOARCH, runtime.Version())
}
