package main

import (
	"regexp"
	"strings"
	"testing"
)

func TestVcliFundDonationUIDAndDisbursementGoodAndBad(t *testing.T) {
	e := newAppsEnv(t)
	e.needsViews()
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
	if _, errOut = e.vcli(1, "fund", "out", "relief", "5000", "--purpose", "too much"); !strings.Contains(errOut, "ERR invalid: record 0: donation.out: fund relief holds 4050 EUR-cent, less than 5000") {
		t.Fatalf("overdraw: %s", errOut)
	}
	e.vcli(0, "fund", "close", "relief")
	if _, errOut = e.vcli(1, "fund", "in", "relief", "1"); !strings.Contains(errOut, "ERR invalid: record 0: donation.in:") {
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
}
