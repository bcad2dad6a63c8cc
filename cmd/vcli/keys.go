package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vserv/vserv/apps"
	"github.com/vserv/vserv/apps/uid"
	"github.com/vserv/vserv/client"
	"github.com/vserv/vserv/verify"
)

// writeSecret writes a private key file readable by its owner only, refusing
// to overwrite one.
func writeSecret(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return usagef("write key: %v", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write key: %w", err)
	}
	return f.Close()
}

func (a *app) keyCmd() *cobra.Command {
	key := &cobra.Command{Use: "key", Short: "Ed25519 signing keys for records (vote, fund, res --key)"}
	var out string
	newCmd := &cobra.Command{
		Use:   "new -o FILE",
		Short: "Make a new Ed25519 key: writes the private key to FILE (mode 0600), prints the public key",
		Long: `vcli key new writes a new Ed25519 private key (its 32-byte seed in base64) to
FILE, readable only by you, and prints the public key text that a chain's
authority list, a voter registration (vote register --voter-key) or a
resource account (res open --account-key) names. FILE must not exist.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("give the private key file with -o FILE")
			}
			pub, priv, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			if err := writeSecret(out, []byte(base64.StdEncoding.EncodeToString(priv.Seed())+"\n")); err != nil {
				return err
			}
			a.print(map[string]any{"ok": true, "public_key": apps.KeyText(pub), "file": out}, apps.KeyText(pub))
			return nil
		},
	}
	newCmd.Flags().StringVarP(&out, "out", "o", "", "write the private key to this file")
	key.AddCommand(newCmd)
	return key
}

// opening is the JSON file `uid new -o` writes: what proves a uid.
type opening struct {
	UID string `json:"uid"`
	M   string `json:"m"`
	R   string `json:"r"` // base64 of the 32 random bytes
}

func (a *app) uidCmd() *cobra.Command {
	u := &cobra.Command{
		Use:   "uid",
		Short: "Unique IDs only their publisher can resolve (donors, targets): keygen, new, open, check",
		Long: `A uid stands for a privileged text (a donor's name, a recipient's address) in a
public record. The publisher (the fund's charity) holds an HPKE key and can
resolve every uid sealed to it; the person the uid stands for keeps the opening
file and can prove the uid is theirs to anyone, without the publisher.`,
	}
	u.AddCommand(a.uidKeygenCmd(), a.uidNewCmd(), a.uidOpenCmd(), a.uidCheckCmd())
	return u
}

func (a *app) uidKeygenCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "keygen -o FILE",
		Short: "Make a publisher key pair: private key to FILE (mode 0600), prints the public key",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usagef("give the private key file with -o FILE")
			}
			k, err := uid.GenerateKey()
			if err != nil {
				return err
			}
			b, err := uid.MarshalPrivateKey(k)
			if err != nil {
				return err
			}
			if err := writeSecret(out, []byte(base64.StdEncoding.EncodeToString(b)+"\n")); err != nil {
				return err
			}
			pub := uid.PublicKeyText(k.PublicKey())
			a.print(map[string]any{"ok": true, "public_key": pub, "file": out}, pub)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the private key to this file")
	return cmd
}

func (a *app) uidNewCmd() *cobra.Command {
	var publisher, out string
	cmd := &cobra.Command{
		Use:   "new --publisher KEY TEXT [-o OPENING-FILE]",
		Short: "Make a uid for TEXT sealed to the publisher; prints the uid value, writes the opening",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if publisher == "" {
				return usagef("give the publisher's public key with --publisher KEY (from vcli uid keygen, or the fund's publisher)")
			}
			pub, err := uid.ParsePublicKey(keyTextArg(publisher))
			if err != nil {
				return usagef("--publisher: %v", err)
			}
			v, o, err := uid.New(pub, args[0])
			if err != nil {
				return usagef("%v", err)
			}
			if out != "" {
				if err := writeOpening(out, v.UID, o); err != nil {
					return err
				}
			}
			sealed := base64.StdEncoding.EncodeToString(v.Sealed)
			a.print(map[string]any{"ok": true, "uid": v.UID, "sealed": sealed, "opening_file": out},
				fmt.Sprintf("uid    %s\nsealed %s", v.UID, sealed))
			return nil
		},
	}
	cmd.Flags().StringVar(&publisher, "publisher", "", "the publisher's uid public key (text, or a file holding it)")
	cmd.Flags().StringVarP(&out, "out", "o", "", "write the opening (what proves the uid) to this file")
	return cmd
}

func writeOpening(path, u string, o uid.Opening) error {
	b, _ := json.MarshalIndent(opening{UID: u, M: o.M, R: base64.StdEncoding.EncodeToString(o.R[:])}, "", "  ")
	return writeSecret(path, append(b, '\n'))
}

func readOpening(path string) (opening, uid.Opening, error) {
	var f opening
	b, err := os.ReadFile(path)
	if err != nil {
		return f, uid.Opening{}, usagef("opening: %v", err)
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return f, uid.Opening{}, usagef("opening %s: %v", path, err)
	}
	r, err := base64.StdEncoding.DecodeString(f.R)
	if err != nil || len(r) != 32 {
		return f, uid.Opening{}, usagef("opening %s: r must be 32 bytes in base64", path)
	}
	o := uid.Opening{M: f.M}
	copy(o.R[:], r)
	return f, o, nil
}

func (a *app) uidCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check UID OPENING-FILE",
		Short: "Check that the opening proves UID; prints the text it stands for",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, o, err := readOpening(args[1])
			if err != nil {
				return err
			}
			if err := uid.Check(args[0], o); err != nil {
				return &quietERR{a.failf("%s: %v", args[0], err)}
			}
			a.print(map[string]any{"ok": true, "uid": args[0], "m": o.M}, fmt.Sprintf("ok: %s stands for %q", args[0], o.M))
			return nil
		},
	}
}

// failf reports a check that failed (exit 1) and returns it.
func (a *app) failf(format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	if a.opts.json {
		a.printJSON(map[string]any{"ok": false, "error": err.Error()})
	} else {
		fmt.Fprintln(a.stderr, "vcli:", err)
	}
	return err
}

func (a *app) uidOpenCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "open --key FILE CHAIN SEQ|ID",
		Short: "Publisher: resolve the donor/target uid of an entry, checking its commitment",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if keyFile == "" {
				return usagef("give the publisher's private key with --key FILE (from vcli uid keygen)")
			}
			b, err := os.ReadFile(keyFile)
			if err != nil {
				return usagef("key: %v", err)
			}
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
			if err != nil {
				return usagef("key %s: not base64", keyFile)
			}
			priv, err := uid.ParsePrivateKey(raw)
			if err != nil {
				return usagef("key %s: %v", keyFile, err)
			}
			chain, ref := args[0], args[1]
			return a.withReader(cmd, func(c *client.Client) error {
				var entry []byte
				if seq, err := strconv.ParseUint(ref, 10, 63); err == nil {
					entry, err = c.AbsRecord(cmd.Context(), chain, int64(seq))
					if err != nil {
						return err
					}
				} else if entry, err = c.GetRecord(cmd.Context(), chain, ref); err != nil {
					return err
				}
				e, rec, err := verify.ParseEntry(entry)
				if err != nil {
					return err
				}
				p, _ := rec.Payload.(map[string]any)
				field := ""
				for _, k := range []string{"donor", "target"} {
					if _, ok := p[k]; ok {
						field = k
					}
				}
				if field == "" {
					return &quietERR{a.failf("entry %d (%s) has no donor or target uid", e.Seq, rec.Type)}
				}
				v, err := uid.CheckValue(p[field])
				if err != nil {
					return &quietERR{a.failf("entry %d: %s: %v", e.Seq, field, err)}
				}
				o, err := uid.Open(priv, v)
				if errors.Is(err, uid.ErrOpen) || errors.Is(err, uid.ErrMismatch) || errors.Is(err, uid.ErrShape) {
					return &quietERR{a.failf("entry %d: %s %s: %v", e.Seq, field, v.UID, err)}
				}
				if err != nil {
					return err
				}
				a.print(map[string]any{"ok": true, "seq": e.Seq, "type": rec.Type, "field": field, "uid": v.UID, "m": o.M},
					fmt.Sprintf("entry %d %s: %s %s is %q (commitment checked)", e.Seq, rec.Type, field, v.UID, o.M))
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&keyFile, "key", "", "the publisher's private key file (from vcli uid keygen)")
	return cmd
}
