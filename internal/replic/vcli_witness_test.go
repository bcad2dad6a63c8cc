package replic_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"filippo.io/torchwood"

	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/internal/secure"
	"github.com/vserv/vserv/internal/testenv"
	"github.com/vserv/vserv/verify"
)

// TestVcliVerifyChainAndReceiptWithWitnesses: a home whose witness W (a
// real vserv) cosigns its checkpoints; `vcli verify chain --witness
// --quorum` accepts the served checkpoint with W listed by key or by name,
// refuses it below quorum naming the witnesses that verified, and refuses
// bad --witness and --quorum values as usage errors. `vcli verify receipt`
// counts a third-party witness listed as NAME=KEY whose line torchwood made.
func TestVcliVerifyChainAndReceiptWithWitnesses(t *testing.T) {
	home := testenv.NewLedgerEnv(t, []string{"c"})
	res := testenv.Put(t, home.Admin, "c", true, testenv.Numbered(t, "s", 0, 3)...)
	head, err := home.Admin.Head(home.Ctx, "c")
	if err != nil {
		t.Fatal(err)
	}
	origin := verify.CheckpointOrigin([]byte(head))
	wit, wname := witnessOf(t, "", origin, home.KeyText())
	wc := wit.Dial()
	wkey := secure.PublicKeyText(wc.Identity())
	wc.Close()
	if err := home.Admin.AddHost(home.Ctx, "http://"+wit.HTTPAddr+"/witness", client.HostSpec{Role: "witness", Key: wkey, Name: wname}); err != nil {
		t.Fatal(err)
	}
	waitCosigned(t, home.Admin, 3, wname)

	tw := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	const twName = "example.com/torchwood-witness"
	twKey := secure.PublicKeyText(tw.Public().(ed25519.PublicKey))
	k := []string{"--server-key", home.KeyText()}

	out, _ := home.Vcli(t, 0, nil, append(k, "verify", "chain", "c", "--witness", wkey, "--quorum", "1")...)
	if !strings.Contains(out, "cosigned by 1 of 1 listed witnesses (quorum 1): "+wname) {
		t.Errorf("verify chain with W by key: %q", out)
	}
	home.Vcli(t, 0, nil, append(k, "verify", "chain", "c", "--witness", wname+"="+wkey, "--quorum", "1")...)
	out, _ = home.Vcli(t, 1, nil, append(k, "verify", "chain", "c", "--witness", wkey, "--witness", twName+"="+twKey, "--quorum", "2")...)
	if !strings.Contains(out, "checkpoint 3: not enough witness cosignatures: 1 of 2 (verified: "+wname+")") {
		t.Errorf("verify chain below quorum: %q", out)
	}
	out, _ = home.Vcli(t, 1, nil, append(k, "--json", "verify", "chain", "c", "--witness", twName+"="+twKey, "--quorum", "1")...)
	var doc struct {
		OK        bool `json:"ok"`
		Witnesses struct {
			Listed    []string `json:"listed"`
			Cosigners []string `json:"cosigners"`
			Error     string   `json:"error"`
		} `json:"witnesses"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.OK || len(doc.Witnesses.Cosigners) != 0 ||
		doc.Witnesses.Listed[0] != twName || !strings.Contains(doc.Witnesses.Error, "no listed witness cosigned") {
		t.Errorf("--json verify chain below quorum: %s (%v)", out, err)
	}
	for _, bad := range [][]string{
		{"--witness", wkey, "--quorum", "2"},
		{"--quorum", "-1"},
		{"--witness", "a b=" + twKey},
		{"--witness", "a+b=" + twKey},
		{"--witness", "=" + twKey},
		{"--witness", twName + "=not-a-key"},
	} {
		home.Vcli(t, 2, nil, append(append(k, "verify", "chain", "c"), bad...)...)
	}

	// A receipt with a line of a vserv witness and one torchwood made.
	vw := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
	vwPub := vw.Public().(ed25519.PublicKey)
	receipt := []byte(res[2].Receipt)
	noteStart := bytes.Index(receipt, []byte("\n\n")) + 2
	text, _, _ := strings.Cut(string(receipt[noteStart:]), "\n\n")
	text += "\n"
	ts, err := torchwood.NewCosignatureSigner(twName, tw)
	if err != nil {
		t.Fatal(err)
	}
	tLine, err := verify.CosignLine(text, ts)
	if err != nil {
		t.Fatal(err)
	}
	vLine, err := verify.CosignLine(text, verify.CosignatureSigner(verify.ServerIDFromKey(vwPub), vw, nil))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := verify.AttachCosignatures(receipt, vLine, tLine)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "receipt")
	if err := os.WriteFile(file, cosigned, 0o600); err != nil {
		t.Fatal(err)
	}
	vwKey := secure.PublicKeyText(vwPub)
	out, _ = home.Vcli(t, 0, nil, append(k, "verify", "receipt", file, "--witness", vwKey, "--witness", twName+"="+twKey, "--quorum", "2")...)
	if !strings.Contains(out, "cosigned by 2 witnesses: "+verify.WitnessName(verify.ServerIDFromKey(vwPub))+", "+twName) {
		t.Errorf("verify receipt with two witnesses: %q", out)
	}
	_, errOut := home.Vcli(t, 1, nil, append(k, "verify", "receipt", file, "--witness", vwKey, "--witness", "example.com/other="+twKey, "--quorum", "2")...)
	if !strings.Contains(errOut, "1 of 2") {
		t.Errorf("verify receipt, torchwood witness under another name: %q", errOut)
	}
}
