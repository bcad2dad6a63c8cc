package client

import (
	"context"
	"fmt"

	"github.com/vserv/vserv/internal/wire"
)

// decode unmarshals vals[i] into each target in order, checking the count.
func decode(cmd string, vals []wire.RawMessage, targets ...any) error {
	if len(vals) < len(targets) {
		return fmt.Errorf("%s: reply has %d values, want %d", cmd, len(vals), len(targets))
	}
	for i, t := range targets {
		if err := wire.Unmarshal(vals[i], t); err != nil {
			return fmt.Errorf("%s: reply value %d: %w", cmd, i+1, err)
		}
	}
	return nil
}

// Hello is the reply to `hello`.
type Hello struct {
	ServerID     string `json:"server_id"`
	ConnectionID string `json:"connection_id"`
}

// Hello calls `hello`.
func (c *Client) Hello(ctx context.Context) (*Hello, error) {
	vals, err := c.Call(ctx, "hello")
	if err != nil {
		return nil, err
	}
	var word string
	h := &Hello{}
	if err := decode("hello", vals, &word, &h.ServerID, &h.ConnectionID); err != nil {
		return nil, err
	}
	return h, nil
}

// Version is the reply to `ver`.
type Version struct {
	Server   string `json:"server"`
	Protocol uint64 `json:"protocol"`
}

// Ver calls `ver`.
func (c *Client) Ver(ctx context.Context) (*Version, error) {
	vals, err := c.Call(ctx, "ver")
	if err != nil {
		return nil, err
	}
	v := &Version{}
	return v, decode("ver", vals, &v.Server, &v.Protocol)
}

// Identity is the reply to `id`.
type Identity struct {
	ServerID    string   `json:"server_id"`
	Site        string   `json:"site"`
	Fingerprint string   `json:"fingerprint"`
	PublicKey   string   `json:"public_key"`
	Receipts    []string `json:"rotation_receipts"`
}

// ID calls `id`.
func (c *Client) ID(ctx context.Context) (*Identity, error) {
	vals, err := c.Call(ctx, "id")
	if err != nil {
		return nil, err
	}
	id := &Identity{}
	if err := decode("id", vals, &id.ServerID, &id.Site, &id.Fingerprint, &id.PublicKey); err != nil {
		return nil, err
	}
	for _, v := range vals[4:] {
		var r string
		if err := wire.Unmarshal(v, &r); err != nil {
			return nil, fmt.Errorf("id: rotation receipt: %w", err)
		}
		id.Receipts = append(id.Receipts, r)
	}
	return id, nil
}

// Help calls `help` without an argument: the command names.
func (c *Client) Help(ctx context.Context) ([]string, error) {
	vals, err := c.Call(ctx, "help")
	if err != nil {
		return nil, err
	}
	var names []string
	return names, decode("help", vals, &names)
}

// HelpFor calls `help command`: its usage text.
func (c *Client) HelpFor(ctx context.Context, command string) (string, error) {
	vals, err := c.Call(ctx, "help", command)
	if err != nil {
		return "", err
	}
	var usage string
	return usage, decode("help", vals, &usage)
}

// DevMode calls `dmode`: true in developer mode.
func (c *Client) DevMode(ctx context.Context) (bool, error) {
	vals, err := c.Call(ctx, "dmode")
	if err != nil {
		return false, err
	}
	var m uint64
	return m == 1, decode("dmode", vals, &m)
}

// Timeout calls `tout`; seconds 0 only reads the current value.
func (c *Client) Timeout(ctx context.Context, seconds uint64) (uint64, error) {
	var vals []wire.RawMessage
	var err error
	if seconds == 0 {
		vals, err = c.Call(ctx, "tout")
	} else {
		vals, err = c.Call(ctx, "tout", seconds)
	}
	if err != nil {
		return 0, err
	}
	var s uint64
	return s, decode("tout", vals, &s)
}

// Quit says goodbye and closes the connection.
func (c *Client) Quit(ctx context.Context) error {
	_, err := c.Call(ctx, "quit")
	c.Close()
	return err
}

// Login is the reply to a successful `pass`.
type Login struct {
	Name     string `json:"name"`
	Role     string `json:"role"`
	Needs2FA bool   `json:"needs2fa"`
}

// Login sends `user` and `pass`. When the result says Needs2FA, call TwoFA.
func (c *Client) Login(ctx context.Context, name, password string) (*Login, error) {
	if _, err := c.Call(ctx, "user", name); err != nil {
		return nil, err
	}
	vals, err := c.Call(ctx, "pass", password)
	if err != nil {
		return nil, err
	}
	var word string
	l := &Login{}
	return l, decode("pass", vals, &word, &l.Name, &l.Role, &l.Needs2FA)
}

// TwoFA sends a TOTP or recovery code.
func (c *Client) TwoFA(ctx context.Context, code string) error {
	_, err := c.Call(ctx, "twofa", code)
	return err
}

// Logout goes back to an anonymous session.
func (c *Client) Logout(ctx context.Context) error {
	_, err := c.Call(ctx, "logout")
	return err
}

// optionalText returns the first value as text, or "" when there is none
// (the enrollment code that production mode adds to some replies).
func optionalText(cmd string, vals []wire.RawMessage) (string, error) {
	if len(vals) == 0 {
		return "", nil
	}
	var s string
	return s, decode(cmd, vals, &s)
}

// InitAdmin calls `uini`: creates the first admin. In production mode it
// returns the enrollment code for the admin's second factor.
func (c *Client) InitAdmin(ctx context.Context, name, password, setupToken string) (string, error) {
	vals, err := c.Call(ctx, "uini", name, password, setupToken)
	if err != nil {
		return "", err
	}
	return optionalText("uini", vals)
}

// AddUser calls `uadd` (or `aadd` when admin). In production mode it returns
// the new account's enrollment code.
func (c *Client) AddUser(ctx context.Context, name, password string, admin bool) (string, error) {
	cmd := "uadd"
	if admin {
		cmd = "aadd"
	}
	vals, err := c.Call(ctx, cmd, name, password)
	if err != nil {
		return "", err
	}
	return optionalText(cmd, vals)
}

// DeleteUser calls `udel`.
func (c *Client) DeleteUser(ctx context.Context, name string) error {
	_, err := c.Call(ctx, "udel", name)
	return err
}

// EnableUser calls `uena name enable|disable`.
func (c *Client) EnableUser(ctx context.Context, name string, enable bool) error {
	how := "disable"
	if enable {
		how = "enable"
	}
	_, err := c.Call(ctx, "uena", name, how)
	return err
}

// UserInfo is one row of `ulist`.
type UserInfo struct {
	Name    string `cbor:"name" json:"name"`
	Role    string `cbor:"role" json:"role"`
	Enabled bool   `cbor:"enabled" json:"enabled"`
	Has2FA  bool   `cbor:"has2fa" json:"has2fa"`
}

// ListUsers calls `ulist`; filter is user, admin, disabled or all ("" = all).
func (c *Client) ListUsers(ctx context.Context, filter string) ([]UserInfo, error) {
	if filter == "" {
		filter = "all"
	}
	vals, err := c.Call(ctx, "ulist", filter)
	if err != nil {
		return nil, err
	}
	var users []UserInfo
	return users, decode("ulist", vals, &users)
}

// ChangePassword changes the logged-in account's password.
func (c *Client) ChangePassword(ctx context.Context, old, newPassword string) error {
	_, err := c.Call(ctx, "chpass", old, newPassword)
	return err
}

// SetPassword sets another account's password (admin).
func (c *Client) SetPassword(ctx context.Context, name, newPassword string) error {
	_, err := c.Call(ctx, "chpass", name, nil, newPassword)
	return err
}

// Throttle calls `throt`: "" reads, "on"/"off" switches. It returns the state.
func (c *Client) Throttle(ctx context.Context, set string) (string, error) {
	var vals []wire.RawMessage
	var err error
	if set == "" {
		vals, err = c.Call(ctx, "throt")
	} else {
		vals, err = c.Call(ctx, "throt", set)
	}
	if err != nil {
		return "", err
	}
	var s string
	return s, decode("throt", vals, &s)
}
