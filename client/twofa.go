package client

import "context"

// Enrollment is the reply to `qr`: the authenticator's otpauth URI, the same
// URI as a PNG QR code, and ten single-use recovery codes. It is pending until
// the first correct TwoFA, and the server discards it if the connection
// ends or logs out before that.
type Enrollment struct {
	URI      string   `json:"uri"`
	PNG      []byte   `json:"-"`
	Recovery []string `json:"recovery_codes"`
}

// Enroll calls `qr`. In production mode the first enrollment of an account
// needs the enrollment code that uini, uadd, aadd or u2fa reset answered;
// otherwise pass "".
func (c *Client) Enroll(ctx context.Context, enrollmentCode string) (*Enrollment, error) {
	args := []any{}
	if enrollmentCode != "" {
		args = append(args, enrollmentCode)
	}
	vals, err := c.Call(ctx, "qr", args...)
	if err != nil {
		return nil, err
	}
	e := &Enrollment{}
	if err := decode("qr", vals, &e.URI, &e.PNG, &e.Recovery); err != nil {
		return nil, err
	}
	return e, nil
}

// Reset2FA calls `u2fa name reset` (admin): the account loses its second
// factor and its sessions end. In production mode it returns the account's
// new enrollment code.
func (c *Client) Reset2FA(ctx context.Context, name string) (string, error) {
	vals, err := c.Call(ctx, "u2fa", name, "reset")
	if err != nil {
		return "", err
	}
	return optionalText("u2fa", vals)
}
