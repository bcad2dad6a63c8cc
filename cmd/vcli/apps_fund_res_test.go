package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

func TestVcliFundDonationUIDAndDisbursementGoodAndBad(t *testing.T) {
	e := newAppsEnv(t)
	charity := e.path("charity.key")
	pub, _ := e.vcli(0, "uid", "keygen", "-o", charity)
	pub = strings.TrimSpace(pub)
	e.vcli(0, "fund", "open", "relief", "--name", "Flood relief", "--unit", "EUR-cent", "--publisher", pub)
	e.vcli(0, "fund", "in", "relief", "5000", "--donor", "Dana Donor", "--opening-out", e.path("dana.opening"))
	e.vcli(0, "fund", "in", "relief", "250")
	e.vcli(0, "fund", "out", "relief", "1200", "--purpose", "blankets", "--target", "Shelter 7")

	out, _ := e.vcli(0, "uid", "open", "--key", charity, "donation", "1")
	m := regexp.MustCompile(`^entry 1 donation.in: donor (u[a-z2-7]{32}) is "Dana Donor" \(commitment checked\)\n$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("uid open of the donation:\n%s", out)
	}
	if out, _ = e.vcli(0, "uid", "check", m[1], e.path("dana.opening")); out != "ok: "+m[1]+" stands for \"Dana Donor\"\n" {
		t.Fatalf("uid check: %q", out)
	}
	if out, _ = e.vcli(0, "uid", "open", "--key", charity, "donation", "3"); !strings.Contains(out, `target u`) || !strings.Contains(out, `is "Shelter 7"`) {
		t.Fatalf("uid open of the disbursement: %s", out)
	}
	_, errOut := e.vcli(1, "uid", "open", "--key", charity, "donation", "2") // no donor
	if !strings.Contains(errOut, "entry 2 (donation.in) has no donor or target uid") {
		t.Fatalf("uid open of an anonymous donation: %s", errOut)
	}
	other := e.path("other.key")
	e.vcli(0, "uid", "keygen", "-o", other)
	if _, errOut = e.vcli(1, "uid", "open", "--key", other, "donation", "1"); !strings.Contains(errOut, "does not open with this key") {
		t.Fatalf("uid open with another key: %s", errOut)
	}

	out, _ = e.vcli(0, "fund", "show", "relief")
	want := "fund relief: Flood relief (EUR-cent), open\nin               5250 EUR-cent  (2 donations)\nout              1200 EUR-cent  (1 disbursements)\nbalance          4050 EUR-cent\n"
	if !strings.HasPrefix(out, want) {
		t.Fatalf("fund show:\n%s\nwant the start\n%s", out, want)
	}
	if out, _ = e.vcli(0, "fund", "list"); out != "relief\n1 funds\n" {
		t.Fatalf("fund list: %q", out)
	}
	out, _ = e.vcli(0, "--json", "fund", "show", "relief")
	if !strings.Contains(out, `"balance": 4050`) {
		t.Fatalf("fund show --json:\n%s", out)
	}

	// The rules: exit 1 with the rule's text.
	if _, errOut = e.vcli(1, "fund", "out", "relief", "5000", "--purpose", "too much"); !strings.Contains(errOut, "ERR invalid: donation.out: fund relief holds 4050 EUR-cent, less than 5000") {
		t.Fatalf("overdraw: %s", errOut)
	}
	e.vcli(0, "fund", "close", "relief")
	if _, errOut = e.vcli(1, "fund", "in", "relief", "1"); !strings.Contains(errOut, "ERR invalid: donation.in:") {
		t.Fatalf("donation to a closed fund: %s", errOut)
	}
	e.vcli(1, "fund", "show", "nosuch")
	// Usage: exit 2.
	e.vcli(2, "fund", "in", "relief", "0")
	e.vcli(2, "fund", "in", "relief", "-5")
	e.vcli(2, "fund", "out", "relief", "5") // no --purpose
	e.vcli(2, "fund", "open", "f2", "--unit", "EUR-cent")
	e.vcli(2, "fund", "in", "relief")
	e.vcli(0, "fund", "open", "nopub", "--name", "No publisher", "--unit", "EUR-cent")
	if _, errOut = e.vcli(2, "fund", "in", "nopub", "5", "--donor", "X"); !strings.Contains(errOut, "names no publisher") {
		t.Fatalf("donor on a fund without publisher: %s", errOut)
	}

	if out, _ = e.vcli(0, "recount", "donation"); !strings.Contains(out, "ok: replayed 6 entries with the donation rules; all 3 views agree with the server at size 6\n") {
		t.Fatalf("recount donation:\n%s", out)
	}
	// The privileged texts never reach the server: not its database, not
	// its log, not any other file of its data directory.
	noPlainText(t, e.srv.DataRoot, "Dana Donor", "Shelter 7")
}

// noPlainText fails if any file under dir holds one of the texts.
func noPlainText(t *testing.T, dir string, texts ...string) {
	t.Helper()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, text := range texts {
			if bytes.Contains(b, []byte(text)) {
				t.Errorf("%s holds the plain text %q", path, text)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("reading the data directory: %v", err)
	}
	if files < 3 {
		t.Fatalf("only %d files under %s: not the server's data directory", files, dir)
	}
}

func TestVcliResourcesWithAuthorityAndAccountKeysGoodAndBad(t *testing.T) {
	e := newAppsEnv(t)
	boss, lab := e.path("boss.key"), e.path("lab.key")
	bossPub, _ := e.vcli(0, "key", "new", "-o", boss)
	labPub, _ := e.vcli(0, "key", "new", "-o", lab)
	bossPub, labPub = strings.TrimSpace(bossPub), strings.TrimSpace(labPub)
	e.vcli(0, "chain", "create", "cpu", "--public", "--schema", "resource", "--authority", bossPub)

	// An authority event not signed by the authority key is refused.
	_, errOut := e.vcli(1, "res", "open", "lab", "--unit", "cpu-hour", "--chain", "cpu")
	if !strings.Contains(errOut, "ERR invalid: account.open:") {
		t.Fatalf("unsigned account.open on a chain with authority keys: %s", errOut)
	}
	e.vcli(0, "res", "open", "lab", "--unit", "cpu-hour", "--account-key", labPub, "--owner", "Physics lab", "--chain", "cpu", "--key", boss)
	e.vcli(0, "res", "open", "student", "--unit", "cpu-hour", "--chain", "cpu", "--key", boss)
	e.vcli(0, "res", "open", "disk", "--unit", "gb", "--chain", "cpu", "--key", boss)
	e.vcli(0, "res", "alloc", "lab", "100", "--chain", "cpu", "--key", boss)
	// lab moves only through records its key signs.
	if _, errOut = e.vcli(1, "res", "transfer", "lab", "student", "30", "--chain", "cpu"); !strings.Contains(errOut, "signed by its key") {
		t.Fatalf("transfer from lab without its key: %s", errOut)
	}
	e.vcli(0, "res", "transfer", "lab", "student", "30", "--chain", "cpu", "--key", lab, "--receipt-out", e.path("t.receipt"))
	e.vcli(0, "res", "consume", "student", "10", "--chain", "cpu")
	if _, errOut = e.vcli(1, "res", "consume", "student", "21", "--chain", "cpu"); !strings.Contains(errOut, "ERR invalid: consume:") {
		t.Fatalf("overconsume: %s", errOut)
	}
	if _, errOut = e.vcli(1, "res", "transfer", "lab", "disk", "1", "--chain", "cpu", "--key", lab); !strings.Contains(errOut, "ERR invalid: transfer:") {
		t.Fatalf("transfer across units: %s", errOut)
	}
	if _, errOut = e.vcli(1, "res", "close", "lab", "--chain", "cpu", "--key", boss); !strings.Contains(errOut, "ERR invalid: account.close:") {
		t.Fatalf("close with a balance: %s", errOut)
	}
	e.vcli(0, "res", "close", "disk", "--chain", "cpu", "--key", boss)

	want := `account  unit             balance     allocated      consumed  state   owner
lab      cpu-hour              70           100             0  open    Physics lab
student  cpu-hour              20             0            10  open    -
disk     gb                     0             0             0  closed  -
`
	if out, _ := e.vcli(0, "res", "list", "--chain", "cpu"); out != want {
		t.Fatalf("res list:\n%s\nwant\n%s", out, want)
	}
	if out, _ := e.vcli(0, "res", "show", "student", "--chain", "cpu"); !strings.Contains(out, "student  cpu-hour              20") {
		t.Fatalf("res show:\n%s", out)
	}
	out, _ := e.vcli(0, "recount", "cpu")
	if !strings.Contains(out, "authority keys: "+bossPub+"\n") || !strings.Contains(out, "ok: replayed 7 entries with the resource rules") {
		t.Fatalf("recount cpu:\n%s", out)
	}
	e.vcli(1, "res", "show", "nosuch", "--chain", "cpu")
	e.vcli(2, "res", "alloc", "lab", "x", "--chain", "cpu")
	e.vcli(2, "res", "transfer", "lab", "student", "--chain", "cpu")
	e.vcli(2, "res", "open", "x", "--chain", "cpu") // no --unit
	e.vcli(2, "res", "open", "x", "--unit", "u", "--account-key", "zz", "--chain", "cpu")
	if _, errOut = e.vcli(1, "chain", "create", "c2", "--schema", "resource", "--authority", "not-a-key"); !strings.Contains(errOut, "ERR invalid: apps: bad authority keys") {
		t.Fatalf("a bad authority key: %s", errOut)
	}
}
