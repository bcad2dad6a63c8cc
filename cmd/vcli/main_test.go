package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/vserv/vserv/internal/wire"
)

// An ERR whose text is empty (a peer may send one) is printed with the
// code's meaning: vcli never prints "ERR notfound:" with nothing after it.
func TestERRWithoutTextPrintsTheCodesMeaning(t *testing.T) {
	for _, code := range []wire.Code{wire.CodeProto, wire.CodeState, wire.CodeAuth, wire.CodePerm, wire.CodeNotFound,
		wire.CodeExists, wire.CodeConflict, wire.CodeInvalid, wire.CodeLimit, wire.CodeInternal} {
		err := fmt.Errorf("rget: %w", &wire.Error{Code: code})
		var stderr bytes.Buffer
		a := &app{stdout: new(bytes.Buffer), stderr: &stderr}
		if got := a.exitStatus(err); got != exitERR {
			t.Errorf("%s: exit %d, want %d", code, got, exitERR)
		}
		if want := "vcli: ERR " + string(code) + ": " + code.Meaning() + "\n"; code.Meaning() == "" || stderr.String() != want {
			t.Errorf("%s: stderr %q, want %q with a non-empty meaning", code, stderr.String(), want)
		}

		var stdout bytes.Buffer
		a = &app{opts: globalOptions{json: true}, stdout: &stdout, stderr: new(bytes.Buffer)}
		a.exitStatus(err)
		var doc struct{ Code, Error string }
		if err := json.Unmarshal(stdout.Bytes(), &doc); err != nil || doc.Code != string(code) || doc.Error != code.Meaning() {
			t.Errorf("%s --json: %q (%v), want code and the meaning as error", code, stdout.String(), err)
		}
	}
}

// The README's tour verifies a chain of one entry: "1 entry", not "1 entries".
func TestEntriesWord(t *testing.T) {
	for n, want := range map[uint64]string{0: "0 entries", 1: "1 entry", 2: "2 entries"} {
		if got := entriesWord(n); got != want {
			t.Errorf("entriesWord(%d) = %q, want %q", n, got, want)
		}
	}
}
