//go:build !linux

package server_test

import "errors"

// setns fails where there are no network namespaces; the test that needs
// them skips before it gets here (it cannot create one).
func setns(uintptr) error { return errors.ErrUnsupported }
