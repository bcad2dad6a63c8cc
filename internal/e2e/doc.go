// Package e2e holds end-to-end tests that drive the real binaries through whole user journeys.
package e2e
