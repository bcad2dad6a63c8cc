//go:build !linux

package server

// lockHolder cannot tell who holds a lock outside Linux.
func lockHolder(string) int { return 0 }
